"""Reading one-time codes and action links out of messages.

- :mod:`.extractor`: ``extract_code``, the ``Extractor`` one process holds, and
  the operator's custom patterns;
- :mod:`.links`: ``extract_link``, the action link of a message (sign in, confirm,
  approve, reset), and :mod:`.linkwords`, the words that say what a link does;
- :mod:`.lexicon`: the words that name a code, qualify it or rule it out, in many languages;
- :mod:`.ranker` and :mod:`.training`: a learned candidate ranker and the offline script
  that trains it and measures it against the rules (leave one source out);
- :mod:`.htmltext`: HTML and plain bodies turned into the text the extractor reads;
- :mod:`.index`: where the lexicon's words stand in one message (``MessageIndex``),
  and the memory of word roles an ``Extractor`` keeps (``RoleMemo``);
- :mod:`.mime`: the raw bytes of a mail turned into its subject, sender and bodies.
"""
