"""The config pipeline (internal): source -> parse -> apply -> snapshot swap -> signals.

``wire`` parses what any publisher sends, ``listener`` is the thread that follows the changes
channel, ``state`` and ``sink`` apply parsed messages under the writer lock, ``schema`` maps
dotted keys onto the typed model, ``snapshot`` is what readers see, ``receivers`` who is told,
``stats`` the counters, ``lastgood`` the last-known-good file. The public names are re-exported
by :mod:`hotconfig`; nothing outside hotconfig imports this package.
"""
