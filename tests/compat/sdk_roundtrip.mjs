// Drives a running Roost with OpenCode's official JS SDK (@opencode-ai/sdk, v1 client):
// create a session, subscribe to events, send prompt_async, wait for session.idle, list
// messages. Questions asked during the turn are answered with each question's first option
// through the HTTP API. Prints a JSON summary on stdout; exits non-zero on any failure.
// Usage: node sdk_roundtrip.mjs BASE_URL PROMPT [TIMEOUT_MS]
import { createOpencodeClient } from "@opencode-ai/sdk"

const [baseUrl, prompt, timeoutArg] = process.argv.slice(2)
const timeoutMs = Number(timeoutArg ?? 30000)
const client = createOpencodeClient({ baseUrl })

function fail(message) {
  console.error(`sdk_roundtrip: ${message}`)
  process.exit(1)
}
const deadline = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs)

const created = await client.session.create({ body: { title: "sdk roundtrip" } })
if (created.error || !created.data?.id) fail(`session.create: ${JSON.stringify(created.error)}`)
const sessionID = created.data.id

const events = await client.event.subscribe()
const seen = []
let answered = 0
const idle = (async () => {
  for await (const event of events.stream) {
    if (event.properties?.sessionID !== sessionID && event.type !== "question.asked") continue
    seen.push(event.type)
    if (event.type === "question.asked" && event.properties.sessionID === sessionID) {
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
})()

const sent = await client.session.promptAsync({
  path: { id: sessionID },
  body: { parts: [{ type: "text", text: prompt }] },
})
if (sent.error) fail(`promptAsync: ${JSON.stringify(sent.error)}`)
if (sent.response.status !== 204) fail(`promptAsync answered ${sent.response.status}`)

await idle
const listed = await client.session.messages({ path: { id: sessionID } })
if (listed.error) fail(`session.messages: ${JSON.stringify(listed.error)}`)
const messages = listed.data
const assistant = messages.filter((m) => m.info.role === "assistant")
if (assistant.length === 0) fail("no assistant message after session.idle")
const last = assistant[assistant.length - 1]
const parts = messages.flatMap((m) => m.parts)
clearTimeout(deadline)
console.log(JSON.stringify({
  sessionID,
  roles: messages.map((m) => m.info.role),
  text: last.parts.filter((p) => p.type === "text").map((p) => p.text).join(""),
  error: last.info.error ?? null,
  tools: parts.filter((p) => p.type === "tool").map((p) => ({ tool: p.tool, status: p.state.status })),
  partStates: parts.filter((p) => p.type === "tool").map((p) => p.state.status),
  answered,
  events: [...new Set(seen)],
}))
process.exit(0)
