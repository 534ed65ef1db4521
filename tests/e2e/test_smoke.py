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
