// AS-side unit tests of the SDK, run by Node's test runner on the compiled
// fixtures (npm run build first). Node's WebAssembly stands in for the host
// here; as_test.go runs the same modules in moat's real runtime.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";

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
  const call = (hook, raw) => {
    const b = Buffer.isBuffer(raw) ? raw : Buffer.from(typeof raw === "string" ? raw : JSON.stringify(raw));
    const p = inst.exports.moat_alloc(b.length);
    assert.notEqual(p, 0);
    new Uint8Array(inst.exports.memory.buffer, p, b.length).set(b);
    const r = inst.exports[hook](p, b.length);
    if (r === 0n) return null;
    const ptr = Number(BigInt.asUintN(64, r) >> 32n), len = Number(r & 0xffffffffn);
    const out = Buffer.from(new Uint8Array(inst.exports.memory.buffer, ptr, len));
    assert.ok(new TextDecoder("utf-8", { fatal: true }).decode(out) !== undefined);
    return JSON.parse(out.toString());
  };
  return { inst, call, logs, module: mod };
}

const echo = load("../build/echo.wasm");
const input = (text, extra = {}) => echo.call("moat_input", { phase: "input", text, ...extra });

test("text round-trips, with byte offsets", () => {
  for (const text of ["", "hello", "héllo wörld", "日本語のテキスト", "emoji 😀👍🏽 mixed", "\u0000\u0001\u001f", "quote \" backslash \\ slash / tab \t nl \n cr \r", "<script>&amp;</script>", "\u2028\u2029", "a".repeat(70000)]) {
    const v = input(text);
    assert.equal(v.action, "modify");
    assert.equal(v.text, text);
    assert.deepEqual(v.findings, [{ rule: "all", start: 0, end: Buffer.byteLength(text) }]);
  }
});

test("escapes decode, surrogate pairs join, lone surrogates become U+FFFD", () => {
  const cases = [
    ['"\\u00e9\\u65e5\\ud83d\\ude00"', "é日😀"],
    ['"\\b\\f\\n\\r\\t\\"\\\\\\/"', "\b\f\n\r\t\"\\/"],
    ['"\\ud83d"', "\ufffd"],
    ['"\\ude00x"', "\ufffdx"],
    ['"\\ud83d\\u0041"', "\ufffdA"],
    ['"\\uD83D\\uDE00"', "😀"],
  ];
  for (const [lit, want] of cases) {
    const v = echo.call("moat_input", `{"phase":"input","text":${lit}}`);
    assert.equal(v.text, want, lit);
  }
});

test("invalid UTF-8 bytes become U+FFFD", () => {
  const raw = Buffer.concat([Buffer.from('{"phase":"input","text":"a'), Buffer.from([0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xe2, 0x82]), Buffer.from('b"}')]);
  const v = echo.call("moat_input", raw);
  assert.equal(v.action, "modify");
  assert.match(v.text, /^a\ufffd+b$/);
});

test("config and context reach the handler", () => {
  const v = input("x", {
    config: { k: "vé", n: 2.5e3, b: true, list: ["a", 1, "b"], nested: { deep: [null, false, {}] } },
    context: { route: "r", model: "m", client: "c", user: "u", request_id: "id", extra: 1 },
    future_field: [1, { a: "b" }],
  });
  assert.equal(v.reason, 'phase=input;route=r;model=m;client=c;user=u;request_id=id;config={"k":"vé","n":2500,"b":true,"list":["a",1,"b"],"nested":{"deep":[null,false,{}]}};k=vé;n=2500.0;b=true;list=a,b');
  const out = echo.call("moat_output", { phase: "output", text: "y" });
  assert.match(out.reason, /^phase=output;.*;config=;k=<none>;n=-1\.0;b=false;list=$/);
});

test("malformed requests are rejected, never trap", () => {
  const bad = ["", "{", "{}", "[]", "null", '{"phase":"input","text":"x"', '{"phase":"input","text":"x",}', '{"phase":"input","text":"\\x"}', '{"phase":"input","text":"\\u12"}',
    '{"phase":"input","text":"a\nb"}', '{"phase":"sideways","text":"x"}', '{"phase":"input","text":1}', '{"phase":"input","text":"x"} x',
    '{"phase":"input","text":"x","config":{"n":01}}', '{"phase":"input","text":"x","config":{"n":-}}', '{"phase":"input","text":"x","config":' + "[".repeat(200) + "]".repeat(200) + "}",
    '{"phase":"input","text":"x","config":tru}', '{"phase":"input","text":"x","context":"c"}'];
  for (const raw of bad) {
    const v = echo.call("moat_input", raw);
    assert.equal(v.action, "reject", raw);
    assert.match(v.reason, /^moat sdk: malformed request: /, raw);
  }
});

test("allow is 0, reject carries the reason, log reaches the host", () => {
  assert.equal(input("!allow"), null);
  assert.deepEqual(input("!reject"), { action: "reject", reason: "echo: rejected on request" });
  assert.equal(input("!log"), null);
  assert.deepEqual(echo.logs.at(-1), [1, "echo: hello from AssemblyScript"]);
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
