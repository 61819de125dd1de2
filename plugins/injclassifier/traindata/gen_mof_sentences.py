"""Writes the MOF sets of hand-written sentences: prompts that each use two
or three trigger words harmlessly, from mof_sentencesN.py. A seeded quarter
of the SENTENCES (the lowest seeded SHA-256 of the text, so adding a
sentence does not move the others) is kept out: own_mofN_calib.json, read by
train-detector --calib-benign and never trained on; the rest is
own_mofN_benign.json.

Rounds (README.md, Training): 5 (mof_sentences5.py, the sixth pass: single
everyday sentences), 6 (mof_sentences6.py, the seventh pass: NotInject's
four styles over NotInject_one's trigger vocabulary, each word listed in
its VOCAB) and 7 (mof_sentences7.py, the eighth pass: prompts of every
length and many contexts over a vocabulary its blind author chose).

    python3 plugins/injclassifier/traindata/gen_mof_sentences.py [ROUND ...]   (default: all)
"""
import hashlib, importlib, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)

# round: (sentence module, seed, most trigger words listed per text)
ROUNDS = {
    "5": ("mof_sentences5", "20261214", 3),
    "6": ("mof_sentences6", "20261221", 3),
    "7": ("mof_sentences7", "20261222", None),
}


def write(rnd):
    module, seed, most = ROUNDS[rnd]
    m = importlib.import_module(module)
    vocab = getattr(m, "VOCAB", None)
    texts = [t for t, _ in m.SENTENCES]
    assert len(texts) == len(set(texts)), "duplicate sentences"
    for t, ws in m.SENTENCES:
        assert 2 <= len(ws) and (most is None or len(ws) <= most), (t, ws)
        assert vocab is None or all(w in vocab for w in ws), (t, ws)

    def key(t):
        return hashlib.sha256((seed + "\x00" + t).encode()).hexdigest()

    calib_set = set(sorted(texts, key=key)[: len(texts) // 4])
    train = [t for t in texts if t not in calib_set]
    calib = [t for t in texts if t in calib_set]
    for name, data in (("own_mof%s_benign.json" % rnd, train), ("own_mof%s_calib.json" % rnd, calib)):
        with open(os.path.join(here, name), "w") as f:
            json.dump(data, f, indent=0, ensure_ascii=False)
        print(len(data), "texts ->", name)


for rnd in sys.argv[1:] or sorted(ROUNDS):
    write(rnd)
