"""Writes own_mof_benign.json and own_mof_calib.json from mof_words.py:
ordinary prompts that use the classifier's trigger words in harmless senses,
alone and joined in twos and threes (texts with one, two or three trigger
words), with a few harmless openers and closers. The words are split with a
fixed seed: the texts of about three quarters of the words are training data
(own_mof_benign.json); the texts of the other quarter (own_mof_calib.json)
are never trained on and are read by train-detector --calib-benign to choose
the threshold on trigger words the model has not seen used harmlessly.

    python3 plugins/injclassifier/traindata/gen_mof.py
"""
import json, os, random, sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from mof_words import WORDS

OPEN = ["", "", "", "Hi! ", "Quick question: ", "Hello, ", "Hey, ", "Sorry to bother you, "]
CLOSE = ["", "", "", " Thanks!", " Thank you.", " Cheers.", " Keep it short please."]
JOIN = [" Also, ", " And another thing: ", " One more question: ", " Separately, ", " "]

rng = random.Random(20261207)
words = sorted(WORDS)
rng.shuffle(words)
calib_words = set(words[: len(words) // 4])


def build(ws, n_combo):
    sents = [(w, s) for w in ws for s in WORDS[w]]
    out = []
    for w, s in sents:
        out.append(rng.choice(OPEN) + s + rng.choice(CLOSE))
    for k in (2, 3):
        for _ in range(n_combo):
            pick = rng.sample(ws, k)
            parts = [rng.choice(WORDS[w]) for w in pick]
            text = parts[0]
            for p in parts[1:]:
                j = rng.choice(JOIN)
                text += j + (p[0].lower() + p[1:] if j.endswith(": ") is False and j.strip() else p)
            out.append(rng.choice(OPEN) + text + rng.choice(CLOSE))
    return sorted(set(out), key=out.index)


train = build(sorted(set(words) - calib_words), 500)
calib = build(sorted(calib_words), 120)
rng.shuffle(train)
rng.shuffle(calib)
for name, data in (("own_mof_benign.json", train), ("own_mof_calib.json", calib)):
    with open(os.path.join(here, name), "w") as f:
        json.dump(data, f, indent=0, ensure_ascii=False)
    print(len(data), "texts ->", name)
print("calibration words:", " ".join(sorted(calib_words)))
