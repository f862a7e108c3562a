"""The parts :class:`~kai_core._stream.EventStream` is made of, one idea each.

An answer stream does several things to every read: it masks the token the
server may repeat, checks that the bytes are UTF-8, checks that a resumed
stream repeats what was already delivered, and writes the log before it hands
events on. Each of those is a small class here, with its own state, that
takes bytes or payloads and gives payloads, records or errors back: it can be
tested without a socket, a server or a trio run. :class:`EventStream` only
reads, decodes and composes them.

- :mod:`.masking`: :class:`~.masking.StreamMask`, the token masked in the payloads of each read.
- :mod:`.utf8`: :class:`~.utf8.Utf8Check`, the incoming bytes checked as UTF-8.
- :mod:`.resume`: :class:`~.resume.ResumeCheck`, a resumed stream checked against the chunks delivered.
- :mod:`.log_writer`: :class:`~.log_writer.LogWriter`, records made and appended, the log first.
- :mod:`.pipeline`: :class:`~.pipeline.Burst`, and a burst committed in a worker thread
  while the next one is read (:func:`~.pipeline.commit_overlapped`).
"""
