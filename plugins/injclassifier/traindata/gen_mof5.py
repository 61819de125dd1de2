"""Writes own_mof5_benign.json and own_mof5_calib.json from mof_sentences5.py
(the fifth MOF round, sixth pass): hand-written single-sentence prompts that
each use two or three trigger words harmlessly. A seeded quarter of the
SENTENCES (the lowest seeded SHA-256 of the text, so adding a sentence does
not move the others) is kept out: own_mof5_calib.json, read by train-detector
--calib-benign and never trained on.

    python3 plugins/injclassifier/traindata/gen_mof5.py
"""
import hashlib, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from mof_sentences5 import SENTENCES

SEED = "20261214"

texts = [t for t, _ in SENTENCES]
assert len(texts) == len(set(texts)), "duplicate sentences"
for t, ws in SENTENCES:
    assert 2 <= len(ws) <= 3, (t, ws)


def key(t):
    return hashlib.sha256((SEED + "\x00" + t).encode()).hexdigest()


ranked = sorted(texts, key=key)
calib_set = set(ranked[: len(ranked) // 4])
train = [t for t in texts if t not in calib_set]
calib = [t for t in texts if t in calib_set]
for name, data in (("own_mof5_benign.json", train), ("own_mof5_calib.json", calib)):
    with open(os.path.join(here, name), "w") as f:
        json.dump(data, f, indent=0, ensure_ascii=False)
    print(len(data), "texts ->", name)
