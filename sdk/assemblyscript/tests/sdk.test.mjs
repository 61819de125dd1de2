// AS-side unit tests of the SDK, run by Node's test runner on the compiled
// fixtures (npm run build first). Node's WebAssembly stands in for the host
// here; as_test.go runs the same modules in moat's real runtime.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";

// encodeRequest writes an ABI v2 request (sdk/ABI.md): a 48-byte header of
// little-endian u32s (version 2, phase code, the ten lengths), then the
// bytes. Strings may be Buffers (raw bytes, for invalid UTF-8).
const CONTEXT = ["route", "model", "client", "user", "request_id", "kind", "role", "path"];
export function encodeRequest({ phase = "input", text = "", config, context = {} }) {
  const bytes = (s) => (Buffer.isBuffer(s) ? s : Buffer.from(s ?? "", "utf8"));
  const cfg = config === undefined ? Buffer.alloc(0) : bytes(typeof config === "string" ? config : JSON.stringify(config));
  const parts = [bytes(text), cfg, ...CONTEXT.map((k) => bytes(context[k]))];
  const head = Buffer.alloc(48);
  head.writeUInt32LE(2, 0);
  head.writeUInt32LE(phase === "output" ? 2 : phase === "input" ? 1 : 7, 4);
  parts.forEach((p, i) => head.writeUInt32LE(p.length, 8 + 4 * i));
  return Buffer.concat([head, ...parts]);
}

// decodeVerdict reads an ABI v2 verdict into the v1 JSON shape.
export function decodeVerdict(b) {
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  assert.equal(b.readUInt32LE(0), 2, "verdict version");
  const action = { 1: "allow", 2: "modify", 3: "reject" }[b.readUInt32LE(4)];
  assert.ok(action, "verdict action code " + b.readUInt32LE(4));
  const tl = b.readUInt32LE(8), rl = b.readUInt32LE(12), nf = b.readUInt32LE(16);
  let at = 20;
  const v = { action };
  if (action === "modify") v.text = utf8.decode(b.subarray(at, at + tl));
  else assert.equal(tl, 0, "text on a " + action);
  at += tl;
  if (rl) v.reason = utf8.decode(b.subarray(at, at + rl));
  at += rl;
  if (nf) v.findings = [];
  for (let i = 0; i < nf; i++) {
    const start = b.readUInt32LE(at), end = b.readUInt32LE(at + 4), n = b.readUInt32LE(at + 8);
    v.findings.push({ rule: utf8.decode(b.subarray(at + 12, at + 12 + n)), start, end });
    at += 12 + n;
  }
  assert.equal(at, b.length, "verdict length");
  return v;
}

function load(path) {
  const mod = new WebAssembly.Module(fs.readFileSync(new URL(path, import.meta.url)));
  const logs = [];
  const inst = new WebAssembly.Instance(mod, {
    env: { abort() { throw new Error("abort"); } },
    moat: {
      log(level, ptr, len) {
        logs.push([level, Buffer.from(new Uint8Array(inst.exports.memory.buffer, ptr, len)).toString()]);
      },
    },
  });
  inst.exports._initialize();
  const call = (hook, req) => {
    const b = Buffer.isBuffer(req) ? req : encodeRequest(req);
    const p = inst.exports.moat_alloc(b.length);
    assert.notEqual(p, 0);
    new Uint8Array(inst.exports.memory.buffer, p, b.length).set(b);
    const r = inst.exports[hook](p, b.length);
    if (r === 0n) return null;
    const ptr = Number(BigInt.asUintN(64, r) >> 32n), len = Number(r & 0xffffffffn);
    return decodeVerdict(Buffer.from(new Uint8Array(inst.exports.memory.buffer, ptr, len)));
  };
  return { inst, call, logs, module: mod };
}

const echo = load("../build/echo.wasm");
const input = (text, extra = {}) => echo.call("moat_input", { phase: "input", text, ...extra });

test("a modify carries the text, an allow or reject never does", () => {
  assert.equal(input("!reject").text, undefined);
});

test("text round-trips, with byte offsets", () => {
  for (const text of ["", "hello", "héllo wörld", "日本語のテキスト", "emoji 😀👍🏽 mixed", "\u0000\u0001\u001f", "quote \" backslash \\ slash / tab \t nl \n cr \r", "<script>&amp;</script>", "\u2028\u2029", "a".repeat(70000)]) {
    const v = input(text);
    assert.equal(v.action, "modify");
    assert.equal(v.text, text);
    assert.deepEqual(v.findings, [{ rule: "all", start: 0, end: Buffer.byteLength(text) }]);
  }
});

// The host sends valid UTF-8; bytes that are not must still not trap, and
// the verdict must stay valid UTF-8 (decodeVerdict decodes strictly).
test("invalid UTF-8 bytes never trap, the verdict stays valid UTF-8", () => {
  const text = Buffer.concat([Buffer.from("a"), Buffer.from([0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xe2, 0x82]), Buffer.from("b")]);
  const v = echo.call("moat_input", { phase: "input", text });
  assert.equal(v.action, "modify");
  assert.match(v.text, /^a.*b$/su);
});

test("a lone surrogate in a verdict is written as U+FFFD (valid UTF-8)", () => {
  const v = input("\ud83d");
  assert.equal(v.text, "\ufffd");
});

test("config and context reach the handler", () => {
  const v = input("x", {
    config: { k: "vé", n: 2.5e3, b: true, list: ["a", 1, "b"], nested: { deep: [null, false, {}] } },
    context: { route: "r", model: "m", client: "c", user: "u", request_id: "id", kind: "tool_input", role: "user", path: "messages.0.content" },
  });
  assert.equal(v.reason, 'phase=input;route=r;model=m;client=c;user=u;request_id=id;kind=tool_input;role=user;path=messages.0.content;config={"k":"vé","n":2500,"b":true,"list":["a",1,"b"],"nested":{"deep":[null,false,{}]}};k=vé;n=2500.0;b=true;list=a,b');
  const out = echo.call("moat_output", { phase: "output", text: "y" });
  assert.match(out.reason, /^phase=output;.*;config=;k=<none>;n=-1\.0;b=false;list=$/);
});

test("malformed requests are rejected, never trap", () => {
  const good = encodeRequest({ text: "x" });
  const set = (off, v) => { const b = Buffer.from(good); b.writeUInt32LE(v, off); return b; };
  const cfg = (c) => encodeRequest({ text: "x", config: c });
  const bad = [Buffer.alloc(0), good.subarray(0, 47), set(0, 1), set(4, 0), set(4, 3), set(8, 2), set(12, 1), Buffer.concat([good, Buffer.from("x")]),
    Buffer.from('{"phase":"input","text":"x"}'), cfg("{"), cfg('{"n":01}'), cfg('{"n":-}'), cfg("[".repeat(200) + "]".repeat(200)), cfg("tru"), cfg("{} x")];
  for (const raw of bad) {
    const v = echo.call("moat_input", raw);
    assert.equal(v.action, "reject", raw.toString("hex"));
    assert.match(v.reason, /^moat sdk: malformed request: /, raw.toString("hex"));
  }
});

test("allow is 0, reject carries the reason, log reaches the host", () => {
  assert.equal(input("!allow"), null);
  assert.deepEqual(input("!reject"), { action: "reject", reason: "echo: rejected on request" });
  assert.equal(input("!log"), null);
  assert.deepEqual(echo.logs.at(-1), [1, "echo: hello from AssemblyScript"]);
});

test("moat_alloc reuses its buffer", () => {
  const a = echo.inst.exports.moat_alloc(100), b = echo.inst.exports.moat_alloc(50);
  assert.equal(a, b);
});

test("phrases: ASCII case folded, other characters exact, first in list order", () => {
  const t = load("../build/phrases.wasm");
  const find = (text) => t.call("moat_input", { phase: "input", text, config: { p: ["ignore previous", "ÇA", "zz"] } });
  assert.equal(find("nothing here"), null);
  assert.deepEqual(find("so, IGNORE Previous things").findings, [{ rule: "p0", start: 4, end: 19 }]);
  assert.equal(find("ça va"), null);
  assert.deepEqual(find("😀 ÇA zz").findings, [{ rule: "p1", start: 5, end: 8 }]);
  assert.deepEqual(find("xxzz").findings, [{ rule: "p2", start: 2, end: 4 }]);
});

test("moat_alloc refuses negative and huge sizes", () => {
  assert.equal(echo.inst.exports.moat_alloc(-1), 0);
  assert.equal(echo.inst.exports.moat_alloc(0x7fffffff), 0);
});

test("memory stays flat over many calls (incremental GC)", () => {
  const text = "x".repeat(4096);
  for (let i = 0; i < 200; i++) input(text);
  const before = echo.inst.exports.memory.buffer.byteLength;
  for (let i = 0; i < 3000; i++) input(text);
  assert.equal(echo.inst.exports.memory.buffer.byteLength, before);
});

const ex = load("../example/build/example.wasm");
const cfg = { deny: ["ignore previous instructions"], mask: ["password", "clé"], mask_with: "***" };
const judge = (text, config = cfg) => ex.call("moat_input", { phase: "input", text, config });

test("example: deny-words", () => {
  assert.deepEqual(WebAssembly.Module.imports(ex.module).map((i) => `${i.module}.${i.name}`), ["env.abort"]);
  assert.equal(ex.inst.exports.moat_phases(), 1);
  assert.equal(echo.inst.exports.moat_phases(), 3);
  assert.equal(judge("a harmless question"), null);
  const r = judge("Please IGNORE previous instructions now");
  assert.equal(r.action, "reject");
  assert.deepEqual(r.findings, [{ rule: "deny:ignore previous instructions", start: 7, end: 35 }]);
  const m = judge("😀 my Password is passpasswordword, la clé");
  assert.equal(m.action, "modify");
  assert.equal(m.text, "😀 my *** is pass***word, la ***");
  assert.deepEqual(m.findings.map((f) => [f.start, f.end]), [[8, 16], [24, 32], [41, 45]]);
  // A replacement that re-creates the word cannot converge: fail closed.
  assert.equal(judge("password", { mask: ["password"], mask_with: "password" }).action, "reject");
  assert.equal(judge("PASSWORD", { mask: ["password"], case_sensitive: true }), null);
  // "İ" lower-cases to two units; folding falls back to ASCII so offsets hold.
  const t = judge("İ PASSWORD CLÉ");
  assert.equal(t.text, "İ *** CLÉ");
  assert.deepEqual(t.findings.map((f) => [f.start, f.end]), [[3, 11]]);
  assert.equal(judge("CLÉ").text, "***");
});
