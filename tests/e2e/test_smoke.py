from tests.support.scripted_llm import ScriptedLLM, text_turn
from tests.support.server import RoostServer


def test_prompt_async_answers_with_the_scripted_text(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(text_turn("hello from the model"))
    session = server.create_session()
    msgs = server.prompt(session["id"], "hi")
    assert [m["info"]["role"] for m in msgs] == ["user", "assistant"]
    texts = [p["text"] for p in msgs[1]["parts"] if p["type"] == "text"]
    assert texts == ["hello from the model"]
    assert msgs[1]["info"]["finish"] == "stop"


def test_event_stream_sends_heartbeats_while_idle(project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = RoostServer(project, tmp_path / "hb.db", env={"ROOST_HEARTBEAT_MS": "200"}).start()
    try:
        frames = []
        for _, frame in srv.events(timeout_s=5):
            frames.append(frame["type"])
            if frames.count("server.heartbeat") == 2:
                break
        assert frames == ["server.connected", "server.heartbeat", "server.heartbeat"]
    finally:
        srv.close()
