// Phrases: find any of a list of phrases in a text, ignoring the case of
// ASCII letters, without lowering a copy of the text.

/** Lowers an ASCII letter; every other UTF-16 unit is left alone. */
// @ts-ignore: decorator
@inline
function fold(c: u32): u32 {
  return c - 0x41 < 26 ? c + 32 : c;
}

class Phrase {
  low: string;
  // Horspool shift per (folded unit & 0xff); a collision keeps the
  // smaller shift, so no occurrence is ever skipped.
  skip: StaticArray<i32> = new StaticArray<i32>(256);

  constructor(s: string) {
    const m = s.length;
    const units = new StaticArray<u16>(m);
    for (let j = 0; j < m; j++) unchecked((units[j] = <u16>fold(<u32>s.charCodeAt(j))));
    this.low = String.UTF16.decodeUnsafe(changetype<usize>(units), <usize>m << 1);
    for (let c = 0; c < 256; c++) unchecked((this.skip[c] = m));
    for (let j = 0; j + 1 < m; j++) {
      const k = <i32>(fold(<u32>s.charCodeAt(j)) & 0xff);
      unchecked((this.skip[k] = m - 1 - j));
    }
  }

  /** The string index of the first occurrence in text, or -1. */
  index(text: string): i32 {
    const m = this.low.length;
    if (m == 0) return -1;
    const n = text.length;
    const t = changetype<usize>(text);
    const p = changetype<usize>(this.low);
    const last = <u32>load<u16>(p + (<usize>(m - 1) << 1));
    let i = 0;
    while (i + m <= n) {
      const c = fold(<u32>load<u16>(t + (<usize>(i + m - 1) << 1)));
      if (c == last) {
        let j = 0;
        while (j < m - 1 && fold(<u32>load<u16>(t + (<usize>(i + j) << 1))) == <u32>load<u16>(p + (<usize>j << 1))) j++;
        if (j == m - 1) return i;
      }
      i += unchecked(this.skip[<i32>(c & 0xff)]);
    }
    return -1;
  }
}

/**
 * Finds any of a list of phrases in a text, ignoring the case of ASCII
 * letters (other characters compare exactly). It skips through the text
 * (Boyer-Moore-Horspool) instead of lowering a copy, so a deny-list check
 * costs microseconds on a few KiB. Build it once per config and reuse it.
 */
export class Phrases {
  private list: Phrase[] = [];
  /** The index of the phrase matched by the last find, or -1. */
  which: i32 = -1;

  constructor(phrases: string[]) {
    for (let i = 0; i < phrases.length; i++) this.list.push(new Phrase(phrases[i]));
  }

  get length(): i32 {
    return this.list.length;
  }

  /**
   * Returns the string index in text of the first phrase in the list that
   * occurs there (its index is then in which), or -1 when none does.
   * Empty phrases never match.
   */
  find(text: string): i32 {
    for (let i = 0; i < this.list.length; i++) {
      const at = unchecked(this.list[i]).index(text);
      if (at >= 0) {
        this.which = i;
        return at;
      }
    }
    this.which = -1;
    return -1;
  }
}
