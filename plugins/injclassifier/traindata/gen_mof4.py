"""Writes own_mof4_benign.json and own_mof4_calib.json from mof_words4.py,
as gen_mof3.py does from mof_words3.py: ordinary prompts using the fourth
pass's trigger words (ranked by train-detector --top-words 500 for the model
with threshold 0.94), alone and joined in twos and threes. A seeded quarter
of the words is kept out (own_mof4_calib.json, read by train-detector
--calib-benign, never trained on).

    python3 plugins/injclassifier/traindata/gen_mof4.py
"""
import json, os, random, sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from mof_words4 import WORDS4 as WORDS

OPEN = ["", "", "", "Hi! ", "Quick question: ", "Hello, ", "Hey, ", "Sorry to bother you, "]
CLOSE = ["", "", "", " Thanks!", " Thank you.", " Cheers.", " Keep it short please."]
JOIN = [" Also, ", " And another thing: ", " One more question: ", " Separately, ", " "]

rng = random.Random(20261211)
words = sorted(WORDS)
rng.shuffle(words)
calib_words = set(words[: len(words) // 4])


def build(ws, n_combo):
    out = [rng.choice(OPEN) + s + rng.choice(CLOSE) for w in ws for s in WORDS[w]]
    for k in (2, 3):
        for _ in range(n_combo):
            parts = [rng.choice(WORDS[w]) for w in rng.sample(ws, k)]
            text = parts[0]
            for p in parts[1:]:
                text += rng.choice(JOIN) + p
            out.append(rng.choice(OPEN) + text + rng.choice(CLOSE))
    return sorted(set(out), key=out.index)


train = build(sorted(set(words) - calib_words), 400)
calib = build(sorted(calib_words), 60)
rng.shuffle(train)
rng.shuffle(calib)
for name, data in (("own_mof4_benign.json", train), ("own_mof4_calib.json", calib)):
    with open(os.path.join(here, name), "w") as f:
        json.dump(data, f, indent=0, ensure_ascii=False)
    print(len(data), "texts ->", name)
print("calibration words:", " ".join(sorted(calib_words)))
