"""Writes the MOF sets: ordinary prompts that use the classifier's trigger
words in harmless senses, alone and joined in twos and threes (texts with
one, two or three trigger words), with a few harmless openers and closers.
The words of each round are split with a fixed seed: the texts of about
three quarters of them are training data (own_mofN_benign.json); the texts
of the other quarter (own_mofN_calib.json) are never trained on and are read
by train-detector --calib-benign to choose the threshold on trigger words
the model has not seen used harmlessly.

Rounds (README.md, Training): 1 (mof_words.py, the second pass), 3
(mof_words3.py, the third) and 4 (mof_words4.py, the fourth MOF round).

    python3 plugins/injclassifier/traindata/gen_mof.py [ROUND ...]   (default: all)
"""
import importlib, json, os, random, sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)

OPEN = ["", "", "", "Hi! ", "Quick question: ", "Hello, ", "Hey, ", "Sorry to bother you, "]
CLOSE = ["", "", "", " Thanks!", " Thank you.", " Cheers.", " Keep it short please."]
JOIN = [" Also, ", " And another thing: ", " One more question: ", " Separately, ", " "]

# round: (word module, its dict, seed, combos per size for training and
# calibration, output prefix, whether a joined prompt is lower-cased after
# a joining word, as the first round did)
ROUNDS = {
    "1": ("mof_words", "WORDS", 20261207, 500, 120, "own_mof", True),
    "3": ("mof_words3", "WORDS3", 20261210, 250, 60, "own_mof3", False),
    "4": ("mof_words4", "WORDS4", 20261211, 400, 60, "own_mof4", False),
}


def generate(module, var, seed, n_train, n_calib, prefix, lower_join):
    words_of = getattr(importlib.import_module(module), var)
    rng = random.Random(seed)
    words = sorted(words_of)
    rng.shuffle(words)
    calib_words = set(words[: len(words) // 4])

    def build(ws, n_combo):
        out = [rng.choice(OPEN) + s + rng.choice(CLOSE) for w in ws for s in words_of[w]]
        for k in (2, 3):
            for _ in range(n_combo):
                parts = [rng.choice(words_of[w]) for w in rng.sample(ws, k)]
                text = parts[0]
                for p in parts[1:]:
                    j = rng.choice(JOIN)
                    if lower_join and not j.endswith(": ") and j.strip():
                        p = p[0].lower() + p[1:]
                    text += j + p
                out.append(rng.choice(OPEN) + text + rng.choice(CLOSE))
        return sorted(set(out), key=out.index)

    train = build(sorted(set(words) - calib_words), n_train)
    calib = build(sorted(calib_words), n_calib)
    rng.shuffle(train)
    rng.shuffle(calib)
    for name, data in ((prefix + "_benign.json", train), (prefix + "_calib.json", calib)):
        with open(os.path.join(here, name), "w") as f:
            json.dump(data, f, indent=0, ensure_ascii=False)
        print(len(data), "texts ->", name)
    print("calibration words:", " ".join(sorted(calib_words)))


for r in sys.argv[1:] or sorted(ROUNDS):
    generate(*ROUNDS[r])
