"""Pure MCP pieces: OpenCode's tool names, config entries, and content mapping."""

from __future__ import annotations

import mcp_types as types
import pytest

from roost import errors
from roost.agent.mcp.connection import call_output
from roost.agent.tools.mcp import tool_name
from roost.api.errors import body_for, status_for
from roost.model.mcp import McpLocalConfig, McpRemoteConfig, parse_servers


@pytest.mark.parametrize(
    ("server", "tool", "expected"),
    [
        ("echo", "text.upper-v1", "echo_text_upper-v1"),
        ("my server", "get/item", "my_server_get_item"),
        ("gh", "list_issues", "gh_list_issues"),
        ("ü", "a:b", "__a_b"),
    ],
)
def test_tool_names_follow_opencodes_sanitizer(server: str, tool: str, expected: str) -> None:
    assert tool_name(server, tool) == expected


def test_config_entries_are_local_remote_or_an_enabled_switch() -> None:
    servers = parse_servers(
        {
            "files": {"type": "local", "command": ["npx", "srv"], "environment": {"A": "1"}},
            "docs": {
                "type": "remote",
                "url": "https://x.test/mcp",
                "oauth": {"clientId": "id", "scope": "read"},
                "timeout": 5000,
            },
            "off": {"enabled": False},
        }
    )
    files, docs = servers["files"], servers["docs"]
    assert isinstance(files, McpLocalConfig) and files.environment == {"A": "1"}
    assert isinstance(docs, McpRemoteConfig) and docs.timeout == 5000
    assert docs.oauth and docs.oauth.client_id == "id"
    assert servers["off"] is None


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "local", "command": ["x"], "url": "extra field"},
        {"type": "local", "command": []},
        {"type": "remote"},
        {"type": "remote", "url": "u", "timeout": 0},
        {"type": "ftp", "url": "u"},
        {"enabled": False, "command": ["x"]},
    ],
)
def test_entries_that_opencode_rejects_are_rejected(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"mcp\.bad"):
        parse_servers({"bad": entry})


def test_content_maps_to_text_and_file_attachments_as_opencode_stores_them() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="one"),
            types.ImageContent(type="image", data="AAAA", mime_type="image/png"),
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(uri="file:///a.txt", text="two"),
            ),
            types.EmbeddedResource(
                type="resource",
                resource=types.BlobResourceContents(uri="file:///b.bin", blob="QkJC"),
            ),
        ]
    )
    text, attachments = call_output(result)
    assert text == "one\n\ntwo"
    assert attachments == [
        {"type": "file", "mime": "image/png", "url": "data:image/png;base64,AAAA"},
        {
            "type": "file",
            "mime": "application/octet-stream",
            "url": "data:application/octet-stream;base64,QkJC",
            "filename": "file:///b.bin",
        },
    ]


def test_mcp_errors_render_opencodes_bodies() -> None:
    missing = errors.McpServerNotFound("nope")
    assert status_for(missing) == 404
    assert body_for(missing) == {
        "_tag": "McpServerNotFoundError",
        "name": "nope",
        "message": "MCP server not found: nope",
    }
    oauth = errors.McpOAuthUnsupported("docs")
    assert status_for(oauth) == 400
    assert set(body_for(oauth)) == {"error"}
