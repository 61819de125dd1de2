// stream.mjs streams through a running moat with the official TypeScript
// SDK and prints one JSON document of results on stdout. The Go test
// host/internal/e2e/stream_tssdk_test.go starts moat, runs this script and
// checks the results; the script itself judges nothing.
//
// Environment:
//   MOAT_URL        moat's base URL (http://127.0.0.1:PORT)
//   MOAT_KEY        moat client key used by cases that name no client
//   MOAT_KEYS       optional JSON object of more keys: {"client-id": "moat_..."}
//   MOAT_MODEL      model name to ask for
//   MOAT_CASES      JSON array of {"name", "client" (optional), "prompt"}
//
// Output: {"sdk_version": "...", "results": [{"name", "ok", "text",
// "final_text", "stop_reason", "error": {"class", "status", "type", "message"}}]}
// where text is what the SDK's 'text' events delivered and final_text what
// finalMessage() returned.
import Anthropic from '@anthropic-ai/sdk';
import { VERSION } from '@anthropic-ai/sdk/version';

function need(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`stream.mjs: ${name} is not set\n`);
    process.exit(2);
  }
  return v;
}

const baseURL = need('MOAT_URL');
const sdk = (apiKey) => new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
const clients = { '': sdk(need('MOAT_KEY')) };
for (const [id, key] of Object.entries(JSON.parse(process.env.MOAT_KEYS || '{}'))) {
  clients[id] = sdk(key);
}
const model = need('MOAT_MODEL');
const cases = JSON.parse(need('MOAT_CASES'));

async function run(c) {
  const client = clients[c.client ?? ''];
  if (!client) {
    throw new Error(`case ${c.name}: unknown client ${c.client}`);
  }
  const stream = client.messages.stream({
    model,
    max_tokens: 512,
    messages: [{ role: 'user', content: c.prompt }],
  });
  const deltas = [];
  stream.on('text', (t) => deltas.push(t));
  try {
    const msg = await stream.finalMessage();
    const finalText = msg.content
      .filter((b) => b.type === 'text')
      .map((b) => b.text)
      .join('');
    return { name: c.name, ok: true, text: deltas.join(''), final_text: finalText, stop_reason: msg.stop_reason };
  } catch (e) {
    const body = e && typeof e === 'object' ? e.error : undefined;
    const type = body?.error?.type ?? body?.type ?? null;
    return {
      name: c.name,
      ok: false,
      text: deltas.join(''),
      error: {
        class: e?.constructor?.name ?? typeof e,
        api_error: e instanceof Anthropic.APIError,
        status: e?.status ?? null,
        type,
        message: String(e?.message ?? e),
      },
    };
  }
}

const results = [];
for (const c of cases) {
  results.push(await run(c));
}
process.stdout.write(JSON.stringify({ sdk_version: VERSION, results }) + '\n');
