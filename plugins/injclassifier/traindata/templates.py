"""Template filling shared by the generators of benign training data
(gen_hardneg.py, gen_triggerwords.py, gen_attack_negatives.py): a template
is a format string and, for each of its slots, the list of fillers."""
import itertools


def fill(tmpl, slots, rng, per, unique=False):
    """The first `per` fillings of tmpl in rng's shuffled order of every
    combination of its slots' fillers; with unique, the distinct ones,
    shuffled again."""
    keys = list(slots)
    combos = list(itertools.product(*[slots[k] for k in keys]))
    rng.shuffle(combos)
    texts = [tmpl.format(**dict(zip(keys, c))) for c in combos[:per]]
    if unique:
        texts = sorted(set(texts))
        rng.shuffle(texts)
    return texts


def split(templates, rng, per, unique=False):
    """Fills every (template, slots) pair and splits the texts by template,
    seeded by rng: a quarter of the templates give the calibration texts
    (never trained on), the rest the training texts. Returns (train, calib)."""
    order = list(range(len(templates)))
    rng.shuffle(order)
    calib_ids = set(order[: len(templates) // 4])
    train, calib = [], []
    for i, (tmpl, slots) in enumerate(templates):
        (calib if i in calib_ids else train).extend(fill(tmpl, slots, rng, per, unique))
    return train, calib
