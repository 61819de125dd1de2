// moat's AssemblyScript SDK: write a sanitizer (input) or validator
// (output) plugin as a plain function from a Request to a Verdict.
//
//   import { Request, Verdict, handleInput } from "@moat/sdk/assembly";
//   export * from "@moat/sdk/assembly/exports"; // the ABI v1 exports
//
//   function judge(req: Request): Verdict {
//     if (req.text.includes("secret")) return Verdict.reject("mentions a secret");
//     return Verdict.allow();
//   }
//   handleInput(judge);
//
// The SDK hides ABI v1 (sdk/ABI.md): it reads the UTF-8 JSON request the
// host writes, converts strings to AssemblyScript's UTF-16 and back, and
// writes the verdict JSON the host expects.

import { JSONKind, JSONValue, Reader, Writer, utf8Length } from "./json";

export { JSONKind, JSONValue, parseJSON } from "./json";

/** Input phase: the text is the user's, on its way to the model. */
export const PHASE_INPUT = "input";
/** Output phase: the text is the model's, on its way to the user. */
export const PHASE_OUTPUT = "output";

/** Where the text comes from. Every field may be empty. */
export class Context {
  route: string = "";
  model: string = "";
  client: string = "";
  user: string = "";
  requestId: string = "";
}

/** One call of the plugin: the text to judge and the plugin's config. */
export class Request {
  /** "input" or "output" (see PHASE_INPUT, PHASE_OUTPUT). */
  phase: string = "";
  /** The text to judge. */
  text: string = "";
  /**
   * The plugin's [plugins.config] table as parsed JSON; JSON null (isNull)
   * when the plugin has none. Read it with getString, getStringArray,
   * getBool, getNumber, getInt.
   */
  config: JSONValue = new JSONValue();
  /** The same config as its raw JSON text, "" when absent. */
  configJSON: string = "";
  /** Where the text comes from. */
  context: Context = new Context();
}

/** Locates one match of a rule in the request's text. */
export class Finding {
  constructor(
    /** The rule that matched. */
    public rule: string,
    /** Start, as a string index (UTF-16 unit) into Request.text. */
    public start: i32,
    /** End (exclusive), as a string index into Request.text. */
    public end: i32,
  ) {}
}

const ACTION_ALLOW = "allow";
const ACTION_MODIFY = "modify";
const ACTION_REJECT = "reject";

/**
 * What the plugin decided. Build one with Verdict.allow(),
 * Verdict.modify(text, reason) or Verdict.reject(reason), and add findings
 * with withFinding.
 */
export class Verdict {
  /** "allow", "modify" or "reject". */
  action: string = ACTION_ALLOW;
  /** The replacement text (modify only). */
  text: string = "";
  /** Why, in a few words; shown in logs and audit records. */
  reason: string = "";
  /** What matched. */
  findings: Finding[] = [];

  /** Passes the text on unchanged. */
  static allow(): Verdict {
    return new Verdict();
  }

  /** Replaces the text. */
  static modify(text: string, reason: string = ""): Verdict {
    const v = new Verdict();
    v.action = ACTION_MODIFY;
    v.text = text;
    v.reason = reason;
    return v;
  }

  /** Refuses the text: the request or response is stopped. */
  static reject(reason: string): Verdict {
    const v = new Verdict();
    v.action = ACTION_REJECT;
    v.reason = reason;
    return v;
  }

  /**
   * Adds a finding. start and end are string indices into Request.text
   * (what indexOf returns); the SDK converts them to the UTF-8 byte offsets
   * of the ABI.
   */
  withFinding(rule: string, start: i32, end: i32): Verdict {
    this.findings.push(new Finding(rule, start, end));
    return this;
  }

  get isAllow(): bool {
    return this.action == ACTION_ALLOW;
  }

  get isModify(): bool {
    return this.action == ACTION_MODIFY;
  }

  get isReject(): bool {
    return this.action == ACTION_REJECT;
  }
}

/** A plugin's judgement of one request. */
export type Handler = (req: Request) => Verdict;

let inputHandler: Handler | null = null;
let outputHandler: Handler | null = null;

/** Registers the input-phase handler. Call it at the top level of the entry file. */
export function handleInput(fn: Handler): void {
  inputHandler = fn;
}

/** Registers the output-phase handler. Call it at the top level of the entry file. */
export function handleOutput(fn: Handler): void {
  outputHandler = fn;
}

// ---- logging ------------------------------------------------------------

/** Log levels of moat.log. */
export const LOG_DEBUG: i32 = 0;
export const LOG_INFO: i32 = 1;
export const LOG_WARN: i32 = 2;
export const LOG_ERROR: i32 = 3;

// @ts-ignore: decorator
@external("moat", "log")
declare function moat_log(level: i32, ptr: usize, len: usize): void;

/**
 * Writes a message to the gateway's log. Only modules that call it import
 * moat.log. Keep it rare: it is a host call per message.
 */
export function log(level: i32, msg: string): void {
  const b = String.UTF8.encode(msg);
  moat_log(level, changetype<usize>(b), <usize>b.byteLength);
}

// ---- the ABI side (used by ./exports) -----------------------------------

/** The largest request moat_alloc hands out (1 GiB, AssemblyScript's block limit). */
const MAX_ALLOC: usize = (1 << 30) - 64;

// The request buffer handed out by moat_alloc and not yet consumed.
let pendingPtr: usize = 0;
// The verdict JSON of the last call: kept reachable (and so alive under the
// incremental GC) until the next call overwrites it, as the ABI requires.
const out = new Writer();
// The last config seen and its parse: most calls repeat the same config, so
// the tree is reused (and a handler may cache on its identity).
let lastConfigRaw: ArrayBuffer = new ArrayBuffer(0);
let lastConfig: JSONValue = new JSONValue();

/** moat_phases: a bit mask of the phases with a handler registered. */
export function abiPhases(): i32 {
  let m = 0;
  if (inputHandler != null) m |= 1;
  if (outputHandler != null) m |= 2;
  return m == 0 ? 3 : m;
}

/** moat_alloc: raw, untracked memory for the request. */
export function abiAlloc(size: i32): i32 {
  if (pendingPtr != 0) {
    heap.free(pendingPtr);
    pendingPtr = 0;
  }
  if (size < 0 || <usize>size > MAX_ALLOC) return 0;
  pendingPtr = heap.alloc(<usize>size);
  return <i32>pendingPtr;
}

/** Runs a hook: decode, judge, encode. */
export function abiCall(ptr: i32, len: i32, output: bool): i64 {
  const req = new Request();
  const err = decodeRequest(<usize>ptr, <usize>len, req);
  if (pendingPtr != 0 && pendingPtr == <usize>ptr) {
    heap.free(pendingPtr);
    pendingPtr = 0;
  }
  let v: Verdict;
  if (err.length != 0) {
    v = Verdict.reject("moat sdk: malformed request: " + err);
  } else {
    const h = output ? outputHandler : inputHandler;
    if (h == null) {
      // Fail closed: the module exports the hook but registered no handler.
      v = Verdict.reject("moat sdk: no " + (output ? "output" : "input") + " handler registered");
    } else {
      v = h(req);
    }
  }
  return encodeVerdict(v, req.text);
}

function readContext(r: Reader, ctx: Context): bool {
  const v = r.readValue();
  if (v == null) return false;
  if (v.kind == JSONKind.Null) return true;
  if (v.kind != JSONKind.Object) return r.fail("\"context\" must be an object");
  ctx.route = v.getString("route");
  ctx.model = v.getString("model");
  ctx.client = v.getString("client");
  ctx.user = v.getString("user");
  ctx.requestId = v.getString("request_id");
  return true;
}

function sameBytes(buf: ArrayBuffer, ptr: usize, len: usize): bool {
  if (<usize>buf.byteLength != len) return false;
  return memory.compare(changetype<usize>(buf), ptr, len) == 0;
}

/** Decodes the request JSON into req; returns "" or the error. */
export function decodeRequest(ptr: usize, len: usize, req: Request): string {
  const r = new Reader(ptr, len);
  if (!r.expect(0x7b)) return r.error;
  let empty = false;
  if (r.peek() == 0x7d) {
    r.pos++;
    empty = true;
  }
  while (!empty) {
    if (r.peek() != 0x22) {
      r.fail("expected a string key");
      return r.error;
    }
    const key = r.readString();
    if (key == null || !r.expect(0x3a)) return r.error;
    if (key == "phase" || key == "text") {
      if (r.peek() != 0x22) {
        r.fail("\"" + key + "\" must be a string");
        return r.error;
      }
      const s = r.readString();
      if (s == null) return r.error;
      if (key == "phase") req.phase = s;
      else req.text = s;
    } else if (key == "config") {
      r.skipSpace();
      const begin = r.pos;
      const v = r.readValue();
      if (v == null) return r.error;
      const n = r.pos - begin;
      if (v.kind == JSONKind.Null) {
        req.config = v;
        req.configJSON = "";
      } else if (sameBytes(lastConfigRaw, begin, n)) {
        req.config = lastConfig;
        req.configJSON = String.UTF8.decodeUnsafe(begin, n);
      } else {
        const raw = new ArrayBuffer(<i32>n);
        memory.copy(changetype<usize>(raw), begin, n);
        lastConfigRaw = raw;
        lastConfig = v;
        req.config = v;
        req.configJSON = String.UTF8.decodeUnsafe(begin, n);
      }
    } else if (key == "context") {
      if (!readContext(r, req.context)) return r.error;
    } else {
      // Unknown members are skipped, for forward compatibility.
      if (r.readValue() == null) return r.error;
    }
    const c = r.peek();
    r.pos++;
    if (c == 0x2c) continue;
    if (c == 0x7d) break;
    r.fail("expected ',' or '}'");
    return r.error;
  }
  r.finish();
  if (r.failed) return r.error;
  if (req.phase != PHASE_INPUT && req.phase != PHASE_OUTPUT) {
    return "unknown phase \"" + req.phase + "\"";
  }
  return "";
}

function clampIndex(i: i32, n: i32): i32 {
  if (i < 0) return 0;
  if (i > n) return n;
  return i;
}

/**
 * Encodes v as the hook's result. A plain allow (no reason, no findings)
 * is 0, with no JSON at all.
 */
export function encodeVerdict(v: Verdict, text: string): i64 {
  if (v.action == ACTION_ALLOW && v.reason.length == 0 && v.findings.length == 0) return 0;
  if (v.action != ACTION_ALLOW && v.action != ACTION_MODIFY && v.action != ACTION_REJECT) {
    v = Verdict.reject("moat sdk: handler returned unknown action \"" + v.action + "\"");
  }
  const w = out;
  w.reset();
  w.raw('{"action":');
  w.str(v.action);
  if (v.action == ACTION_MODIFY) {
    w.raw(',"text":');
    w.str(v.text);
  }
  if (v.reason.length != 0) {
    w.raw(',"reason":');
    w.str(v.reason);
  }
  const fs = v.findings;
  if (fs.length != 0) {
    w.raw(',"findings":[');
    // Offsets become UTF-8 byte offsets; walking forward from the last
    // converted index keeps sorted findings linear.
    const n = text.length;
    let lastIdx = 0;
    let lastByte = 0;
    for (let i = 0; i < fs.length; i++) {
      const f = unchecked(fs[i]);
      const s = clampIndex(f.start, n);
      const e = clampIndex(f.end, n) < s ? s : clampIndex(f.end, n);
      let sb: i32;
      if (s >= lastIdx) sb = lastByte + utf8Length(text, lastIdx, s);
      else sb = utf8Length(text, 0, s);
      const eb = sb + utf8Length(text, s, e);
      lastIdx = e;
      lastByte = eb;
      if (i > 0) w.byte(0x2c);
      w.raw('{"rule":');
      w.str(f.rule);
      w.raw(',"start":');
      w.int(sb);
      w.raw(',"end":');
      w.int(eb);
      w.byte(0x7d);
    }
    w.byte(0x5d);
  }
  w.byte(0x7d);
  return (<i64>w.ptr << 32) | <i64>w.len;
}
