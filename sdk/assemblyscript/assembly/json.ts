// A small, strict JSON reader and an escaping writer, working directly on
// UTF-8 bytes in linear memory. It is all the SDK needs to read the request
// the host sends and to write the verdict it expects, with no dependency.
//
// The reader follows RFC 8259: no trailing commas, no comments, no leading
// zeros, no raw control characters in strings. Strings may carry every
// escape, \uXXXX included, and UTF-16 surrogate pairs are joined. Like Go's
// encoding/json, a lone surrogate escape and an invalid UTF-8 byte decode to
// U+FFFD instead of failing.

/** Kinds of JSON value. */
export enum JSONKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** How deep arrays and objects may nest before the reader gives up. */
export const MAX_DEPTH: i32 = 128;

/**
 * One parsed JSON value: a small read-only view. The zero value (`new
 * JSONValue()`) is JSON null. Getters never fail: a missing key or a value
 * of another kind returns the default given.
 */
export class JSONValue {
  kind: JSONKind = JSONKind.Null;
  boolValue: bool = false;
  numberValue: f64 = 0;
  stringValue: string = "";
  items: JSONValue[] | null = null;
  keys: string[] | null = null;
  values: JSONValue[] | null = null;

  /** Whether the value is JSON null (or absent). */
  get isNull(): bool {
    return this.kind == JSONKind.Null;
  }

  /** Whether the value is an object. */
  get isObject(): bool {
    return this.kind == JSONKind.Object;
  }

  /** The number of items of an array or members of an object, else 0. */
  get length(): i32 {
    const items = this.items;
    if (items != null) return items.length;
    const keys = this.keys;
    if (keys != null) return keys.length;
    return 0;
  }

  /** Whether an object has the key. */
  has(key: string): bool {
    return this.get(key) != null;
  }

  /** The member named key of an object (the last one if repeated), or null. */
  get(key: string): JSONValue | null {
    const keys = this.keys;
    const values = this.values;
    if (keys == null || values == null) return null;
    for (let i = keys.length - 1; i >= 0; i--) {
      if (unchecked(keys[i]) == key) return unchecked(values[i]);
    }
    return null;
  }

  /** Item i of an array, or null. */
  at(i: i32): JSONValue | null {
    const items = this.items;
    if (items == null || i < 0 || i >= items.length) return null;
    return unchecked(items[i]);
  }

  /** The string member key, or def when absent or not a string. */
  getString(key: string, def: string = ""): string {
    const v = this.get(key);
    if (v == null || v.kind != JSONKind.String) return def;
    return v.stringValue;
  }

  /** The number member key, or def when absent or not a number. */
  getNumber(key: string, def: f64 = 0): f64 {
    const v = this.get(key);
    if (v == null || v.kind != JSONKind.Number) return def;
    return v.numberValue;
  }

  /** The number member key as an integer (truncated), or def. */
  getInt(key: string, def: i64 = 0): i64 {
    const v = this.get(key);
    if (v == null || v.kind != JSONKind.Number || !isFinite(v.numberValue)) return def;
    return <i64>v.numberValue;
  }

  /** The boolean member key, or def when absent or not a boolean. */
  getBool(key: string, def: bool = false): bool {
    const v = this.get(key);
    if (v == null || v.kind != JSONKind.Bool) return def;
    return v.boolValue;
  }

  /** The string items of the array member key; other items are skipped. */
  getStringArray(key: string): string[] {
    const out = new Array<string>();
    const v = this.get(key);
    if (v == null) return out;
    const items = v.items;
    if (items == null) return out;
    for (let i = 0; i < items.length; i++) {
      const it = unchecked(items[i]);
      if (it.kind == JSONKind.String) out.push(it.stringValue);
    }
    return out;
  }
}

/** Parses JSON from UTF-8 bytes at [ptr, ptr+len). */
export class Reader {
  pos: usize;
  end: usize;
  start: usize;
  depth: i32 = 0;
  /** The first error met, or "" while all is well. */
  error: string = "";

  constructor(ptr: usize, len: usize) {
    this.start = ptr;
    this.pos = ptr;
    this.end = ptr + len;
  }

  /** Records an error (the first one wins) and returns false. */
  fail(msg: string): bool {
    if (this.error.length == 0) {
      this.error = msg + " at offset " + (this.pos - this.start).toString();
    }
    this.pos = this.end;
    return false;
  }

  get failed(): bool {
    return this.error.length != 0;
  }

  skipSpace(): void {
    while (this.pos < this.end) {
      const c = load<u8>(this.pos);
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) this.pos++;
      else break;
    }
  }

  /** Peeks the next non-space byte, or -1 at the end. */
  peek(): i32 {
    this.skipSpace();
    if (this.pos >= this.end) return -1;
    return <i32>load<u8>(this.pos);
  }

  /** Consumes byte c after optional space, or fails. */
  expect(c: i32): bool {
    if (this.peek() != c) {
      return this.fail("expected '" + String.fromCharCode(c) + "'");
    }
    this.pos++;
    return true;
  }

  /** Checks that only space is left. */
  finish(): bool {
    if (this.peek() != -1) return this.fail("unexpected data after the JSON value");
    return !this.failed;
  }

  /** Reads any value into a tree. Returns null on error (see error). */
  readValue(): JSONValue | null {
    const c = this.peek();
    const v = new JSONValue();
    switch (c) {
      case 0x22: {
        // "
        v.kind = JSONKind.String;
        const s = this.readString();
        if (s == null) return null;
        v.stringValue = s;
        return v;
      }
      case 0x7b: {
        // {
        if (++this.depth > MAX_DEPTH) {
          this.fail("JSON nested too deeply");
          return null;
        }
        this.pos++;
        v.kind = JSONKind.Object;
        const keys = new Array<string>();
        const values = new Array<JSONValue>();
        if (this.peek() == 0x7d) {
          this.pos++;
        } else {
          while (true) {
            if (this.peek() != 0x22) {
              this.fail("expected a string key");
              return null;
            }
            const k = this.readString();
            if (k == null || !this.expect(0x3a)) return null;
            const val = this.readValue();
            if (val == null) return null;
            keys.push(k);
            values.push(val);
            const n = this.peek();
            this.pos++;
            if (n == 0x2c) continue;
            if (n == 0x7d) break;
            this.fail("expected ',' or '}'");
            return null;
          }
        }
        this.depth--;
        v.keys = keys;
        v.values = values;
        return v;
      }
      case 0x5b: {
        // [
        if (++this.depth > MAX_DEPTH) {
          this.fail("JSON nested too deeply");
          return null;
        }
        this.pos++;
        v.kind = JSONKind.Array;
        const items = new Array<JSONValue>();
        if (this.peek() == 0x5d) {
          this.pos++;
        } else {
          while (true) {
            const it = this.readValue();
            if (it == null) return null;
            items.push(it);
            const n = this.peek();
            this.pos++;
            if (n == 0x2c) continue;
            if (n == 0x5d) break;
            this.fail("expected ',' or ']'");
            return null;
          }
        }
        this.depth--;
        v.items = items;
        return v;
      }
      case 0x74: // t
        if (!this.literal("true")) return null;
        v.kind = JSONKind.Bool;
        v.boolValue = true;
        return v;
      case 0x66: // f
        if (!this.literal("false")) return null;
        v.kind = JSONKind.Bool;
        return v;
      case 0x6e: // n
        if (!this.literal("null")) return null;
        return v;
      case -1:
        this.fail("unexpected end of JSON");
        return null;
      default:
        if (c == 0x2d || (c >= 0x30 && c <= 0x39)) {
          const n = this.readNumber();
          if (this.failed) return null;
          v.kind = JSONKind.Number;
          v.numberValue = n;
          return v;
        }
        this.fail("unexpected character");
        return null;
    }
  }

  literal(word: string): bool {
    const n = <usize>word.length;
    if (this.end - this.pos < n) return this.fail("invalid literal");
    for (let i: usize = 0; i < n; i++) {
      if (<i32>load<u8>(this.pos + i) != word.charCodeAt(<i32>i)) return this.fail("invalid literal");
    }
    this.pos += n;
    return true;
  }

  digits(): i32 {
    let n = 0;
    while (this.pos < this.end) {
      const c = load<u8>(this.pos);
      if (c < 0x30 || c > 0x39) break;
      this.pos++;
      n++;
    }
    return n;
  }

  /** Reads a number with the strict JSON grammar. */
  readNumber(): f64 {
    const begin = this.pos;
    if (load<u8>(this.pos) == 0x2d) this.pos++;
    if (this.pos < this.end && load<u8>(this.pos) == 0x30) {
      this.pos++;
    } else if (this.digits() == 0) {
      this.fail("invalid number");
      return 0;
    }
    if (this.pos < this.end && load<u8>(this.pos) == 0x2e) {
      this.pos++;
      if (this.digits() == 0) {
        this.fail("invalid number");
        return 0;
      }
    }
    if (this.pos < this.end && (load<u8>(this.pos) | 0x20) == 0x65) {
      this.pos++;
      if (this.pos < this.end && (load<u8>(this.pos) == 0x2b || load<u8>(this.pos) == 0x2d)) this.pos++;
      if (this.digits() == 0) {
        this.fail("invalid number");
        return 0;
      }
    }
    if (this.pos < this.end) {
      const c = load<u8>(this.pos);
      if (c >= 0x30 && c <= 0x39) {
        this.fail("invalid number");
        return 0;
      }
    }
    // The bytes are ASCII: parseFloat reads them after a latin-1 decode.
    return parseFloat(String.UTF8.decodeUnsafe(begin, this.pos - begin));
  }

  hex4(at: usize): i32 {
    let v = 0;
    for (let i: usize = 0; i < 4; i++) {
      const c = <i32>load<u8>(at + i);
      let d: i32;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      else return -1;
      v = (v << 4) | d;
    }
    return v;
  }

  /**
   * Reads a string at the current '"'. The UTF-8 bytes and escapes decode
   * straight into a UTF-16 string. Returns null on error.
   */
  readString(): string | null {
    this.pos++; // opening quote
    // Pass 1: find the closing quote. A backslash skips the next byte.
    let p = this.pos;
    while (true) {
      if (p >= this.end) {
        this.fail("unterminated string");
        return null;
      }
      const c = load<u8>(p);
      if (c == 0x22) break;
      if (c == 0x5c) p++;
      p++;
    }
    const close = p;
    // Each input byte yields at most one UTF-16 unit (a 4-byte sequence
    // yields two), so the byte count bounds the string's size.
    const cap = (close - this.pos) << 1;
    const out = __new(cap, idof<string>());
    let o = out;
    p = this.pos;
    while (p < close) {
      const b = <u32>load<u8>(p);
      if (b < 0x80) {
        if (b == 0x5c) {
          if (p + 1 >= close) {
            this.pos = p;
            this.fail("invalid escape");
            return null;
          }
          const e = <u32>load<u8>(p + 1);
          p += 2;
          let u: u32 = 0;
          switch (e) {
            case 0x22: u = 0x22; break;
            case 0x5c: u = 0x5c; break;
            case 0x2f: u = 0x2f; break;
            case 0x62: u = 0x08; break;
            case 0x66: u = 0x0c; break;
            case 0x6e: u = 0x0a; break;
            case 0x72: u = 0x0d; break;
            case 0x74: u = 0x09; break;
            case 0x75: {
              if (p + 4 > close) {
                this.pos = p;
                this.fail("invalid \\u escape");
                return null;
              }
              const h = this.hex4(p);
              if (h < 0) {
                this.pos = p;
                this.fail("invalid \\u escape");
                return null;
              }
              p += 4;
              u = <u32>h;
              if (u >= 0xd800 && u < 0xdc00) {
                // A high surrogate: valid only followed by \u of a low one.
                if (p + 6 <= close && load<u8>(p) == 0x5c && load<u8>(p + 1) == 0x75) {
                  const l = this.hex4(p + 2);
                  if (l >= 0xdc00 && l < 0xe000) {
                    store<u16>(o, <u16>u);
                    o += 2;
                    u = <u32>l;
                    p += 6;
                  } else {
                    u = 0xfffd;
                  }
                } else {
                  u = 0xfffd;
                }
              } else if (u >= 0xdc00 && u < 0xe000) {
                u = 0xfffd; // a lone low surrogate
              }
              break;
            }
            default:
              this.pos = p - 1;
              this.fail("invalid escape");
              return null;
          }
          store<u16>(o, <u16>u);
          o += 2;
          continue;
        }
        if (b < 0x20) {
          this.pos = p;
          this.fail("control character in string");
          return null;
        }
        store<u16>(o, <u16>b);
        o += 2;
        p++;
        continue;
      }
      // A multi-byte UTF-8 sequence, checked for shortness, overlongs,
      // surrogates and range. A bad byte becomes U+FFFD and decoding
      // resumes at the next byte.
      let cp: u32 = 0xfffd;
      let n: usize = 1;
      if (b >= 0xc2 && b <= 0xdf) {
        if (p + 1 < close) {
          const b1 = <u32>load<u8>(p + 1);
          if ((b1 & 0xc0) == 0x80) {
            cp = ((b & 0x1f) << 6) | (b1 & 0x3f);
            n = 2;
          }
        }
      } else if (b >= 0xe0 && b <= 0xef) {
        if (p + 2 < close) {
          const b1 = <u32>load<u8>(p + 1);
          const b2 = <u32>load<u8>(p + 2);
          const lo: u32 = b == 0xe0 ? 0xa0 : 0x80;
          const hi: u32 = b == 0xed ? 0x9f : 0xbf;
          if (b1 >= lo && b1 <= hi && (b2 & 0xc0) == 0x80) {
            cp = ((b & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
            n = 3;
          }
        }
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (p + 3 < close) {
          const b1 = <u32>load<u8>(p + 1);
          const b2 = <u32>load<u8>(p + 2);
          const b3 = <u32>load<u8>(p + 3);
          const lo: u32 = b == 0xf0 ? 0x90 : 0x80;
          const hi: u32 = b == 0xf4 ? 0x8f : 0xbf;
          if (b1 >= lo && b1 <= hi && (b2 & 0xc0) == 0x80 && (b3 & 0xc0) == 0x80) {
            cp = ((b & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
            n = 4;
          }
        }
      }
      p += n;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        store<u16>(o, <u16>(0xd800 | (cp >> 10)));
        store<u16>(o + 2, <u16>(0xdc00 | (cp & 0x3ff)));
        o += 4;
      } else {
        store<u16>(o, <u16>cp);
        o += 2;
      }
    }
    this.pos = close + 1;
    return changetype<string>(__renew(out, o - out));
  }
}

/** Parses a whole JSON document from a string (for tests and tools). */
export function parseJSON(s: string): JSONValue | null {
  const buf = String.UTF8.encode(s);
  const r = new Reader(changetype<usize>(buf), <usize>buf.byteLength);
  const v = r.readValue();
  if (v == null || !r.finish()) return null;
  return v;
}

const HEX = "0123456789abcdef";

/**
 * Writes UTF-8 JSON into one growable buffer. The buffer is reused: what a
 * previous write produced stays valid until reset is called.
 */
export class Writer {
  buf: ArrayBuffer = new ArrayBuffer(256);
  len: i32 = 0;

  reset(): void {
    this.len = 0;
  }

  get ptr(): usize {
    return changetype<usize>(this.buf);
  }

  ensure(n: i32): void {
    const need = this.len + n;
    if (need <= this.buf.byteLength) return;
    let cap = this.buf.byteLength << 1;
    if (cap < need) cap = need;
    const nb = new ArrayBuffer(cap);
    memory.copy(changetype<usize>(nb), changetype<usize>(this.buf), <usize>this.len);
    this.buf = nb;
  }

  byte(b: u32): void {
    this.ensure(1);
    store<u8>(this.ptr + <usize>this.len, <u8>b);
    this.len++;
  }

  /** Writes ASCII text as is (for punctuation and keys). */
  raw(s: string): void {
    const n = s.length;
    this.ensure(n);
    const p = this.ptr + <usize>this.len;
    for (let i = 0; i < n; i++) store<u8>(p + <usize>i, <u8>s.charCodeAt(i));
    this.len += n;
  }

  /** Writes a non-negative or negative integer. */
  int(v: i64): void {
    this.raw(v.toString());
  }

  /**
   * Writes s as a quoted JSON string in UTF-8: '"', '\\' and control
   * characters escaped, surrogate pairs joined, a lone surrogate written as
   * U+FFFD so the output is always valid UTF-8.
   */
  str(s: string): void {
    const n = s.length;
    // Three bytes per UTF-16 unit cover every non-escaped case; escapes
    // check again.
    this.ensure(n * 3 + 2);
    let p = this.ptr + <usize>this.len;
    store<u8>(p++, 0x22);
    const src = changetype<usize>(s);
    for (let i = 0; i < n; i++) {
      const c = <u32>load<u16>(src + (<usize>i << 1));
      if (c < 0x80) {
        if (c >= 0x20 && c != 0x22 && c != 0x5c) {
          store<u8>(p++, <u8>c);
          continue;
        }
        // An escape: up to 6 bytes where 3 were reserved.
        this.len = <i32>(p - this.ptr);
        this.ensure((n - i) * 3 + 8);
        p = this.ptr + <usize>this.len;
        store<u8>(p++, 0x5c);
        switch (c) {
          case 0x22: store<u8>(p++, 0x22); break;
          case 0x5c: store<u8>(p++, 0x5c); break;
          case 0x0a: store<u8>(p++, 0x6e); break;
          case 0x0d: store<u8>(p++, 0x72); break;
          case 0x09: store<u8>(p++, 0x74); break;
          case 0x08: store<u8>(p++, 0x62); break;
          case 0x0c: store<u8>(p++, 0x66); break;
          default:
            store<u8>(p++, 0x75);
            store<u8>(p++, 0x30);
            store<u8>(p++, 0x30);
            store<u8>(p++, <u8>HEX.charCodeAt(c >> 4));
            store<u8>(p++, <u8>HEX.charCodeAt(c & 15));
        }
      } else if (c < 0x800) {
        store<u8>(p++, <u8>(0xc0 | (c >> 6)));
        store<u8>(p++, <u8>(0x80 | (c & 0x3f)));
      } else if (c >= 0xd800 && c < 0xe000) {
        let cp: u32 = 0xfffd;
        if (c < 0xdc00 && i + 1 < n) {
          const c2 = <u32>load<u16>(src + (<usize>(i + 1) << 1));
          if (c2 >= 0xdc00 && c2 < 0xe000) {
            cp = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
            i++;
          }
        }
        if (cp >= 0x10000) {
          store<u8>(p++, <u8>(0xf0 | (cp >> 18)));
          store<u8>(p++, <u8>(0x80 | ((cp >> 12) & 0x3f)));
          store<u8>(p++, <u8>(0x80 | ((cp >> 6) & 0x3f)));
          store<u8>(p++, <u8>(0x80 | (cp & 0x3f)));
        } else {
          store<u8>(p++, 0xef);
          store<u8>(p++, 0xbf);
          store<u8>(p++, 0xbd);
        }
      } else {
        store<u8>(p++, <u8>(0xe0 | (c >> 12)));
        store<u8>(p++, <u8>(0x80 | ((c >> 6) & 0x3f)));
        store<u8>(p++, <u8>(0x80 | (c & 0x3f)));
      }
    }
    store<u8>(p++, 0x22);
    this.len = <i32>(p - this.ptr);
  }

  /** Writes v as a little-endian u32 (ABI v2 layouts). */
  u32(v: u32): void {
    this.ensure(4);
    store<u32>(this.ptr + <usize>this.len, v);
    this.len += 4;
  }

  /** Overwrites the little-endian u32 at byte offset at. */
  setU32(at: i32, v: u32): void {
    store<u32>(this.ptr + <usize>at, v);
  }

  /**
   * Writes s as UTF-8 bytes, unquoted (ABI v2 layouts), a lone surrogate
   * as U+FFFD so the output is always valid UTF-8. Returns the byte count.
   */
  utf8(s: string): i32 {
    const n = String.UTF8.byteLength(s);
    this.ensure(n);
    const w = <i32>String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.ptr + <usize>this.len, false, String.UTF8.ErrorMode.REPLACE);
    this.len += w;
    return w;
  }

  /** The bytes written so far, copied out as a string (for tests). */
  toString(): string {
    return String.UTF8.decodeUnsafe(this.ptr, <usize>this.len);
  }
}

/** The length in UTF-8 bytes of s[0:end), counting a lone surrogate as 3. */
export function utf8Length(s: string, from: i32, to: i32): i32 {
  let n = 0;
  const src = changetype<usize>(s);
  for (let i = from; i < to; i++) {
    const c = <u32>load<u16>(src + (<usize>i << 1));
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < to) {
      const c2 = <u32>load<u16>(src + (<usize>(i + 1) << 1));
      if (c2 >= 0xdc00 && c2 < 0xe000) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
