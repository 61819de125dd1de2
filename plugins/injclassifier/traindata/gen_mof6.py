"""Writes own_mof6_benign.json and own_mof6_calib.json from mof_sentences6.py
(the sixth MOF round, seventh pass): hand-written prompts in NotInject's four
styles (everyday requests, technical questions, creative requests, other
languages), each using two or three words of NotInject_one's trigger
vocabulary (and of mof_words*.py) harmlessly. A seeded quarter of the
SENTENCES (the lowest seeded SHA-256 of the text, so adding a sentence does
not move the others) is kept out: own_mof6_calib.json, read by train-detector
--calib-benign and never trained on.

    python3 plugins/injclassifier/traindata/gen_mof6.py
"""
import hashlib, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from mof_sentences6 import SENTENCES, VOCAB

SEED = "20261221"

texts = [t for t, _ in SENTENCES]
assert len(texts) == len(set(texts)), "duplicate sentences"
for t, ws in SENTENCES:
    assert 2 <= len(ws) <= 3, (t, ws)
    for w in ws:
        assert w in VOCAB, (t, w)


def key(t):
    return hashlib.sha256((SEED + "\x00" + t).encode()).hexdigest()


ranked = sorted(texts, key=key)
calib_set = set(ranked[: len(ranked) // 4])
train = [t for t in texts if t not in calib_set]
calib = [t for t in texts if t in calib_set]
for name, data in (("own_mof6_benign.json", train), ("own_mof6_calib.json", calib)):
    with open(os.path.join(here, name), "w") as f:
        json.dump(data, f, indent=0, ensure_ascii=False)
    print(len(data), "texts ->", name)
