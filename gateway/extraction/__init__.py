"""Reading one-time codes out of messages.

- :mod:`.extractor`: ``extract_code`` and the operator's custom patterns;
- :mod:`.lexicon`: the words that name a code, qualify it or rule it out, in many languages;
- :mod:`.htmltext`: HTML and plain bodies turned into the text the extractor reads,
  and the index of where the listed words stand in it.
"""
