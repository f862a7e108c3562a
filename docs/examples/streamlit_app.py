"""A chat with Kai in Streamlit: answers streamed with st.write_stream, approve/deny buttons.

    STORAGE_API_TOKEN=... STORAGE_API_URL=https://connection.keboola.com \\
        streamlit run docs/examples/streamlit_app.py

(or ``KAI_BASE_URL`` and ``KAI_SERVICE`` to talk to a Kai server directly,
such as the emulator of ``kai serve``).

A Streamlit script is plain code, run again from the top on every click, in
a thread with no event loop. Each browser session keeps a
``kai_core.aio.LoopThread`` (an asyncio loop in a thread of its own) and a
``kai_core.aio.KaiClient`` opened on it in ``st.session_state``, so a
stream can outlive one run of the script: on kai-agent, a tool waiting for
approval keeps its answer's stream open until the Approve or Deny click of
a later run answers it, and the answer goes on in the same stream. On
kai-assistant the answer ends at the request, and the decision streams the
continuation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import streamlit as st

from kai_core.aio import EventStream, KaiClient, LoopThread, ToolApprovalRequestEvent


async def open_client() -> KaiClient:
    token = os.environ["STORAGE_API_TOKEN"]
    url = os.environ["STORAGE_API_URL"]
    base_url = os.environ.get("KAI_BASE_URL")
    if base_url:
        client = KaiClient(token, url, base_url=base_url, backend=os.environ.get("KAI_SERVICE"))
    else:
        client = await KaiClient.from_storage_api(token, url)
    return await client.__aenter__()  # closed with the session (see the docstring)


state = st.session_state
if "kai" not in state:
    state.loop = LoopThread()
    state.kai = state.loop.run(open_client())
    state.chat_id = KaiClient.new_chat_id()
    state.messages = []  # (role, markdown) already shown
    state.stream = None  # the open stream of an answer waiting for a decision (kai-agent)
    state.pending = None  # the tool waiting for a decision
    state.decision = None  # set by the Approve/Deny buttons
loop: LoopThread = state.loop
kai: KaiClient = state.kai


def texts(stream: EventStream) -> Iterator[str]:
    """The answer's text, for st.write_stream; it stops at a tool that waits for a decision."""
    for event in loop.iterate(stream):
        if event.type == "text":
            yield event.text
        elif isinstance(event, ToolApprovalRequestEvent):
            state.pending = event
            state.stream = stream  # kai-agent: still open, waiting for the decision
            return
    state.stream = None


def show_answer(stream: EventStream) -> None:
    with st.chat_message("assistant"):
        text = st.write_stream(texts(stream))
    state.messages.append(("assistant", text if isinstance(text, str) else ""))


def decide(approved: bool) -> None:
    state.decision = approved


st.title("Kai")
for role, text in state.messages:
    st.chat_message(role).markdown(text)

if state.decision is not None and state.pending is not None:
    pending: ToolApprovalRequestEvent = state.pending
    approved: bool = state.decision
    state.pending = state.decision = None
    note = f"{'Approved' if approved else 'Denied'}: {pending.tool_name}"
    st.chat_message("user").markdown(note)
    state.messages.append(("user", note))
    if pending.transport == "agent":
        loop.run(kai.submit_approval(state.chat_id, pending.tool_call_id, approved))
        show_answer(state.stream)
    else:
        show_answer(kai.send_tool_approval_response(state.chat_id, pending.approval_id, approved))

if prompt := st.chat_input("Ask Kai"):
    st.chat_message("user").markdown(prompt)
    state.messages.append(("user", prompt))
    show_answer(kai.send_message(state.chat_id, prompt))

if state.pending is not None:
    st.warning(f"Kai wants to run **{state.pending.tool_name}** with `{state.pending.input}`")
    approve, deny = st.columns(2)
    approve.button("Approve", key="approve", on_click=decide, args=(True,))
    deny.button("Deny", key="deny", on_click=decide, args=(False,))
