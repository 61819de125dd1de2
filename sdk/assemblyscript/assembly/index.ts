// moat's AssemblyScript SDK: write a sanitizer (input) or validator
// (output) plugin as a plain function from a Request to a Verdict.
//
//   import { Request, Verdict, handleInput } from "@moat/sdk/assembly";
//   export * from "@moat/sdk/assembly/exports"; // the ABI v2 exports
//
//   function judge(req: Request): Verdict {
//     if (req.text.includes("secret")) return Verdict.reject("mentions a secret");
//     return Verdict.allow();
//   }
//   handleInput(judge);
//
// The SDK hides ABI v2 (sdk/ABI.md): it reads the binary request the host
// writes into a buffer reused across calls, converts strings to
// AssemblyScript's UTF-16 and back, parses the config's JSON only when it
// changes, and writes the binary verdict the host expects (no text unless
// the verdict modifies it).

import { JSONKind, JSONValue, Reader, Writer, utf8Length } from "./json";

export { JSONKind, JSONValue, parseJSON } from "./json";
export { Phrases } from "./phrases";

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
  /** What sort of content the text is ("text", "tool_input", ...; "" is text). */
  kind: string = "";
  /** The role of the message the text came from ("user", "assistant", "system"), or "". */
  role: string = "";
  /** Where the text is in the request or response (e.g. "messages.2.content.0"). */
  path: string = "";
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
/** ABI v2: the version word, and the request and verdict header sizes. */
const V2: u32 = 2;
const REQUEST_HEADER: usize = 48;

// The request buffer handed out by moat_alloc, reused while large enough.
let reqPtr: usize = 0;
let reqCap: usize = 0;
// The verdict of the last call: kept reachable (and so alive under the
// incremental GC) until the next call overwrites it, as the ABI requires.
const out = new Writer();
// The last config seen and its parse: most calls repeat the same config, so
// the tree is reused (and a handler may cache on its identity).
let lastConfigRaw: ArrayBuffer = new ArrayBuffer(0);
let lastConfig: JSONValue = new JSONValue();
let lastConfigJSON: string = "";
// The config of every call without one: the same JSON null each time.
const NO_CONFIG = new JSONValue();

/** moat_phases: a bit mask of the phases with a handler registered. */
export function abiPhases(): i32 {
  let m = 0;
  if (inputHandler != null) m |= 1;
  if (outputHandler != null) m |= 2;
  return m == 0 ? 3 : m;
}

/** moat_alloc: the request buffer, untracked by the GC and reused across calls. */
export function abiAlloc(size: i32): i32 {
  if (size < 0 || <usize>size > MAX_ALLOC) return 0;
  if (reqPtr == 0 || <usize>size > reqCap) {
    if (reqPtr != 0) heap.free(reqPtr);
    reqCap = <usize>size > 256 ? <usize>size : 256;
    reqPtr = heap.alloc(reqCap);
  }
  return <i32>reqPtr;
}

/** Runs a hook: decode, judge, encode. */
export function abiCall(ptr: i32, len: i32, output: bool): i64 {
  const req = new Request();
  let err = "";
  if (reqPtr == 0 || <usize>ptr != reqPtr || <usize>len > reqCap) {
    err = "request buffer was not allocated by moat_alloc";
  } else {
    err = decodeRequest(<usize>ptr, <usize>len, req);
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

function sameBytes(buf: ArrayBuffer, ptr: usize, len: usize): bool {
  if (<usize>buf.byteLength != len) return false;
  return memory.compare(changetype<usize>(buf), ptr, len) == 0;
}

/**
 * Decodes an ABI v2 request at [ptr, ptr+len) into req; returns "" or the
 * error. The config's JSON is parsed only when its bytes differ from the
 * last call's.
 */
export function decodeRequest(ptr: usize, len: usize, req: Request): string {
  if (len < REQUEST_HEADER) return "request of " + len.toString() + " bytes is shorter than its header";
  const version = load<u32>(ptr);
  if (version != V2) return "unsupported request version " + version.toString();
  const phase = load<u32>(ptr, 4);
  if (phase == 1) req.phase = PHASE_INPUT;
  else if (phase == 2) req.phase = PHASE_OUTPUT;
  else return "unknown phase code " + phase.toString();
  let total: u64 = <u64>REQUEST_HEADER;
  for (let i: usize = 0; i < 10; i++) total += <u64>load<u32>(ptr + 8 + (i << 2));
  if (total != <u64>len) return "request lengths add up to " + total.toString() + " bytes, not " + len.toString();
  let at = ptr + REQUEST_HEADER;
  const textLen = <usize>load<u32>(ptr, 8);
  req.text = String.UTF8.decodeUnsafe(at, textLen);
  at += textLen;
  const cfgLen = <usize>load<u32>(ptr, 12);
  if (cfgLen == 0) {
    req.config = NO_CONFIG;
    req.configJSON = "";
  } else if (sameBytes(lastConfigRaw, at, cfgLen)) {
    req.config = lastConfig;
    req.configJSON = lastConfigJSON;
  } else {
    const r = new Reader(at, cfgLen);
    const v = r.readValue();
    if (v == null || !r.finish()) return "config: " + r.error;
    const raw = new ArrayBuffer(<i32>cfgLen);
    memory.copy(changetype<usize>(raw), at, cfgLen);
    lastConfigRaw = raw;
    lastConfig = v;
    lastConfigJSON = String.UTF8.decodeUnsafe(at, cfgLen);
    req.config = v;
    req.configJSON = lastConfigJSON;
  }
  at += cfgLen;
  const c = req.context;
  let n: usize;
  n = <usize>load<u32>(ptr, 16); c.route = n == 0 ? "" : String.UTF8.decodeUnsafe(at, n); at += n;
  n = <usize>load<u32>(ptr, 20); c.model = n == 0 ? "" : String.UTF8.decodeUnsafe(at, n); at += n;
  n = <usize>load<u32>(ptr, 24); c.client = n == 0 ? "" : String.UTF8.decodeUnsafe(at, n); at += n;
  n = <usize>load<u32>(ptr, 28); c.user = n == 0 ? "" : String.UTF8.decodeUnsafe(at, n); at += n;
  n = <usize>load<u32>(ptr, 32); c.requestId = n == 0 ? "" : String.UTF8.decodeUnsafe(at, n); at += n;
  n = <usize>load<u32>(ptr, 36); c.kind = n == 0 ? "" : String.UTF8.decodeUnsafe(at, n); at += n;
  n = <usize>load<u32>(ptr, 40); c.role = n == 0 ? "" : String.UTF8.decodeUnsafe(at, n); at += n;
  n = <usize>load<u32>(ptr, 44); c.path = n == 0 ? "" : String.UTF8.decodeUnsafe(at, n);
  return "";
}

function clampIndex(i: i32, n: i32): i32 {
  if (i < 0) return 0;
  if (i > n) return n;
  return i;
}

/**
 * Encodes v as the hook's result, an ABI v2 verdict. A plain allow (no
 * reason, no findings) is 0, with no verdict at all; only a modify carries
 * text.
 */
export function encodeVerdict(v: Verdict, text: string): i64 {
  if (v.action == ACTION_ALLOW && v.reason.length == 0 && v.findings.length == 0) return 0;
  let code: u32 = 0;
  if (v.action == ACTION_ALLOW) code = 1;
  else if (v.action == ACTION_MODIFY) code = 2;
  else if (v.action == ACTION_REJECT) code = 3;
  else {
    v = Verdict.reject("moat sdk: handler returned unknown action \"" + v.action + "\"");
    code = 3;
  }
  const w = out;
  w.reset();
  w.u32(V2);
  w.u32(code);
  w.u32(0); // text length, patched below
  w.u32(0); // reason length
  const fs = v.findings;
  w.u32(<u32>fs.length);
  if (code == 2) w.setU32(8, <u32>w.utf8(v.text));
  w.setU32(12, <u32>w.utf8(v.reason));
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
    w.u32(<u32>sb);
    w.u32(<u32>eb);
    const at = w.len;
    w.u32(0);
    w.setU32(at, <u32>w.utf8(f.rule));
  }
  return (<i64>w.ptr << 32) | <i64>w.len;
}
