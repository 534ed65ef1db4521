// Drives a running Roost with OpenCode's official JS SDK (@opencode-ai/sdk, v1 client):
// create a session, subscribe to events, send prompt_async, wait for session.idle, then list
// messages until the assistant reply is complete. Questions asked during the turn are answered
// with each question's first option through the HTTP API. Prints a JSON summary on stdout; exits
// non-zero on any failure (including the overall timeout).
// Usage: node sdk_roundtrip.mjs BASE_URL PROMPT [TIMEOUT_MS]
import { createOpencodeClient } from "@opencode-ai/sdk"

const [baseUrl, prompt, timeoutArg] = process.argv.slice(2)
if (!baseUrl || prompt === undefined) {
  console.error("usage: node sdk_roundtrip.mjs BASE_URL PROMPT [TIMEOUT_MS]")
  process.exit(2)
}
const timeoutMs = Number(timeoutArg ?? 30000)
const client = createOpencodeClient({ baseUrl })

function fail(message) {
  console.error(`sdk_roundtrip: ${message}`)
  process.exit(1)
}
const deadline = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const created = await client.session.create({ body: { title: "sdk roundtrip" } })
if (created.error || !created.data?.id) fail(`session.create: ${JSON.stringify(created.error)}`)
const sessionID = created.data.id

const events = await client.event.subscribe()
const seen = []
let connected = false
// Frames the SDK could not parse as JSON arrive as strings: a frame the server ended with CRLF
// is merged with the next one by the SDK's parser (it splits on "\n\n").
let unparsed = 0
let answered = 0
const idle = (async () => {
  for await (const event of events.stream) {
    if (typeof event !== "object" || event === null) {
      unparsed += 1
      continue
    }
    if (event.type === "server.connected") connected = true
    if (event.properties?.sessionID !== sessionID) continue
    seen.push(event.type)
    if (event.type === "question.asked") {
      const answers = event.properties.questions.map((q) => [q.options[0].label])
      const res = await fetch(`${baseUrl}/question/${event.properties.id}/reply`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ answers }),
      })
      if (!res.ok) fail(`question reply: ${res.status}`)
      answered += 1
    }
    if (event.type === "session.idle") return
  }
  fail("event stream ended before session.idle")
})()

const sent = await client.session.promptAsync({
  path: { id: sessionID },
  body: { parts: [{ type: "text", text: prompt }] },
})
if (sent.error) fail(`promptAsync: ${JSON.stringify(sent.error)}`)
if (sent.response.status !== 204) fail(`promptAsync answered ${sent.response.status}`)

await idle

// session.idle is published after the reply is committed; poll anyway, as a client would.
let messages = []
let last
for (;;) {
  const listed = await client.session.messages({ path: { id: sessionID } })
  if (listed.error) fail(`session.messages: ${JSON.stringify(listed.error)}`)
  messages = listed.data
  last = messages.findLast((m) => m.info.role === "assistant")
  if (last && (last.info.time.completed !== undefined || last.info.error)) break
  await sleep(50)
}
const parts = messages.flatMap((m) => m.parts)
const tools = parts.filter((p) => p.type === "tool")
clearTimeout(deadline)
console.log(
  JSON.stringify({
    sessionID,
    roles: messages.map((m) => m.info.role),
    text: last.parts
      .filter((p) => p.type === "text")
      .map((p) => p.text)
      .join(""),
    error: last.info.error ?? null,
    tools: tools.map((p) => ({ tool: p.tool, status: p.state.status })),
    partStates: tools.map((p) => p.state.status),
    answered,
    events: [...new Set(seen)],
    connected,
    unparsed,
  }),
)
process.exit(0)
