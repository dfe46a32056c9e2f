// Checks the gateway's OpenAI-compatible HTTP API with the official `openai` npm client: every call goes through the
// SDK's own request building, response parsing, SSE decoding and typed errors, so what passes here works for OpenAI
// clients. Usage: node check.mjs [base-url]   (default $OPENAI_BASE_URL or http://127.0.0.1:8080/v1)
// Exit status 0 iff every check passes. Works on any model with a tokenizer (a random one is fine: the checks compare
// the gateway with itself and with OpenAI's shapes, never with expected words).
import OpenAI from 'openai';

const baseURL = process.argv[2] ?? process.env.OPENAI_BASE_URL ?? 'http://127.0.0.1:8080/v1';
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });

const results = [];
function assert(cond, what) {
  if (!cond) throw new Error(what);
}
async function check(name, fn) {
  try {
    await fn();
    results.push([name, null]);
    console.log(`ok    ${name}`);
  } catch (e) {
    results.push([name, e]);
    console.log(`FAIL  ${name}: ${e?.stack ?? e}`);
  }
}
async function expectError(fn, Type, status, param) {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof Type, `expected ${Type.name}, got ${e?.constructor?.name}: ${e?.message}`);
    assert(e.status === status, `expected HTTP ${status}, got ${e.status}`);
    assert(typeof e.error?.message === 'string' && e.error.message.length > 0, 'the error object has a message');
    if (param !== undefined) assert(e.param === param, `expected param ${param}, got ${e.param} (${e.message})`);
    return e;
  }
  throw new Error(`expected ${Type.name} (HTTP ${status}), the call succeeded`);
}
function checkUsage(u, completionTokens) {
  assert(u && Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0, `usage.prompt_tokens: ${JSON.stringify(u)}`);
  assert(u.completion_tokens === completionTokens, `usage.completion_tokens ${u.completion_tokens} != ${completionTokens}`);
  assert(u.total_tokens === u.prompt_tokens + u.completion_tokens, `usage.total_tokens: ${JSON.stringify(u)}`);
}
const greedy = { temperature: 0, max_tokens: 12 };
const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Name three colours.' }];
let model;

await check('models.list and models.retrieve', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  assert(ids.length >= 1, 'at least one model');
  model = ids[0];
  assert(page.data[0].object === 'model' && typeof page.data[0].owned_by === 'string', JSON.stringify(page.data[0]));
  const one = await client.models.retrieve(model);
  assert(one.id === model && one.object === 'model', JSON.stringify(one));
  await expectError(() => client.models.retrieve('no-such-model'), OpenAI.NotFoundError, 404);
});

let greedyText;
await check('completions: text prompt, greedy, usage, finish_reason', async () => {
  const r = await client.completions.create({ model, prompt: 'The quick brown fox', ...greedy, max_tokens: 24 });
  assert(r.object === 'text_completion' && r.choices.length === 1, JSON.stringify(r));
  const c = r.choices[0];
  assert(c.index === 0 && typeof c.text === 'string', JSON.stringify(c));
  assert(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
  checkUsage(r.usage, r.usage.completion_tokens);
  assert(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 24, JSON.stringify(r.usage));
  const again = await client.completions.create({ model, prompt: 'The quick brown fox', ...greedy, max_tokens: 24 });
  assert(again.choices[0].text === c.text, 'greedy decoding is repeatable');
  greedyText = c.text;
});

await check('completions: token-id prompt (array of ints and array of one array)', async () => {
  const r = await client.completions.create({ model, prompt: [1, 2, 3, 4, 5], ...greedy });
  assert(r.usage.prompt_tokens === 5, `prompt_tokens ${r.usage.prompt_tokens}`);
  const nested = await client.completions.create({ model, prompt: [[1, 2, 3, 4, 5]], ...greedy });
  assert(nested.choices[0].text === r.choices[0].text, 'same prompt, same greedy text');
});

let chatText;
await check('chat.completions: non-streaming', async () => {
  const r = await client.chat.completions.create({ model, messages, ...greedy });
  assert(r.object === 'chat.completion' && r.choices.length === 1, JSON.stringify(r));
  const m = r.choices[0].message;
  assert(m.role === 'assistant' && typeof m.content === 'string', JSON.stringify(m));
  assert(['stop', 'length'].includes(r.choices[0].finish_reason), r.choices[0].finish_reason);
  checkUsage(r.usage, r.usage.completion_tokens);
  chatText = m.content;
});

await check('chat.completions: streaming (SSE) equals non-streaming, usage chunk', async () => {
  const stream = await client.chat.completions.create({ model, messages, ...greedy, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, chunks = 0, role = null;
  for await (const chunk of stream) {
    assert(chunk.object === 'chat.completion.chunk', JSON.stringify(chunk));
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta?.role) role = c.delta.role;
      text += c.delta?.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert(chunks > 1, `chunks ${chunks}`);
  assert(role === 'assistant', `role ${role}`);
  assert(text === chatText, `streamed ${JSON.stringify(text)} vs ${JSON.stringify(chatText)}`);
  assert(['stop', 'length'].includes(finish), `finish ${finish}`);
  assert(usage, 'a usage chunk with stream_options.include_usage');
  checkUsage(usage, usage.completion_tokens);
});

await check('completions: streaming (SSE) equals non-streaming', async () => {
  const stream = await client.completions.create({ model, prompt: 'The quick brown fox', ...greedy, max_tokens: 24, stream: true });
  let text = '', finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text += c.text ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert(text === greedyText, `streamed ${JSON.stringify(text)} vs ${JSON.stringify(greedyText)}`);
  assert(['stop', 'length'].includes(finish), `finish ${finish}`);
});

await check('completions: logprobs with top alternatives', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', ...greedy, max_tokens: 6, logprobs: 3 });
  const lp = r.choices[0].logprobs;
  const n = r.usage.completion_tokens;
  assert(lp && lp.tokens.length === n && lp.token_logprobs.length === n, JSON.stringify(lp));
  assert(Array.isArray(lp.top_logprobs) && lp.top_logprobs.length === n, 'top_logprobs: one object per token');
  assert(Array.isArray(lp.text_offset) && lp.text_offset.length === n, 'text_offset: one per token');
  for (let i = 0; i < n; i++) {
    const top = Object.values(lp.top_logprobs[i]);
    assert(top.length >= 1 && top.length <= 3, `top ${i}: ${JSON.stringify(lp.top_logprobs[i])}`);
    assert(lp.token_logprobs[i] <= 0, `logprob ${lp.token_logprobs[i]}`);
    // greedy: the sampled token is the most likely one
    assert(Math.abs(Math.max(...top) - lp.token_logprobs[i]) < 1e-4, `greedy token is the top one at ${i}`);
  }
});

await check('chat.completions: logprobs and top_logprobs', async () => {
  const r = await client.chat.completions.create({ model, messages, ...greedy, max_tokens: 6, logprobs: true, top_logprobs: 4 });
  const content = r.choices[0].logprobs?.content;
  assert(Array.isArray(content) && content.length === r.usage.completion_tokens, JSON.stringify(r.choices[0].logprobs));
  for (const t of content) {
    assert(typeof t.token === 'string' && t.logprob <= 0 && Array.isArray(t.bytes), JSON.stringify(t));
    assert(t.top_logprobs.length === 4, `top_logprobs ${t.top_logprobs.length}`);
    for (let i = 1; i < 4; i++) assert(t.top_logprobs[i - 1].logprob >= t.top_logprobs[i].logprob, 'most likely first');
    assert(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-4, 'greedy token is the top one');
  }
  await expectError(() => client.chat.completions.create({ model, messages, top_logprobs: 3 }), OpenAI.BadRequestError, 400, 'top_logprobs');
});

await check('n > 1: several choices, seeded', async () => {
  const r = await client.completions.create({ model, prompt: 'Hello', max_tokens: 8, temperature: 1, seed: 7, n: 3 });
  assert(r.choices.length === 3, `choices ${r.choices.length}`);
  assert(JSON.stringify(r.choices.map((c) => c.index).sort()) === '[0,1,2]', 'indexes 0..2');
  const again = await client.completions.create({ model, prompt: 'Hello', max_tokens: 8, temperature: 1, seed: 7, n: 3 });
  for (let i = 0; i < 3; i++) assert(again.choices[i].text === r.choices[i].text, 'a seed makes n > 1 repeatable');
  assert(new Set(r.choices.map((c) => c.text)).size > 1, 'the choices are sampled independently');
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 6, n: 2, seed: 3 });
  assert(chat.choices.length === 2 && chat.choices[1].index === 1, JSON.stringify(chat.choices));
  checkUsage(chat.usage, chat.choices.length > 0 ? chat.usage.completion_tokens : 0);
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 6, n: 2, seed: 3, stream: true });
  const texts = ['', ''];
  for await (const chunk of stream) for (const c of chunk.choices) texts[c.index] += c.delta?.content ?? '';
  assert(texts[0] === chat.choices[0].message.content && texts[1] === chat.choices[1].message.content, 'streamed n = 2 equals non-streamed');
});

await check('stop strings end the text before the stop', async () => {
  const full = (await client.completions.create({ model, prompt: 'The quick brown fox', ...greedy, max_tokens: 24 })).choices[0].text;
  assert(full.length >= 6, `need some text to cut, got ${JSON.stringify(full)}`);
  const stop = full.slice(3, 6);
  const cut = full.slice(0, full.indexOf(stop));
  const r = await client.completions.create({ model, prompt: 'The quick brown fox', ...greedy, max_tokens: 24, stop: [stop] });
  assert(r.choices[0].text === cut, `text ${JSON.stringify(r.choices[0].text)} vs ${JSON.stringify(cut)} (stop ${JSON.stringify(stop)})`);
  assert(r.choices[0].finish_reason === 'stop', r.choices[0].finish_reason);
  const s = await client.completions.create({ model, prompt: 'The quick brown fox', ...greedy, max_tokens: 24, stop, stream: true });
  let text = '';
  for await (const chunk of s) text += chunk.choices[0]?.text ?? '';
  assert(text === cut, `streamed ${JSON.stringify(text)} vs ${JSON.stringify(cut)}`);
});

await check('errors: 400 with an OpenAI error object naming the parameter', async () => {
  const bad = [
    [{ temperature: -1 }, 'temperature'],
    [{ top_p: 0 }, 'top_p'],
    [{ max_tokens: 0 }, 'max_tokens'],
    [{ presence_penalty: 0.5 }, 'presence_penalty'],
    [{ frequency_penalty: 1 }, 'frequency_penalty'],
    [{ logit_bias: { 5: 10 } }, 'logit_bias'],
    [{ echo: true }, 'echo'],
    [{ suffix: 'x' }, 'suffix'],
    [{ best_of: 3 }, 'best_of'],
  ];
  for (const [extra, param] of bad) {
    await expectError(() => client.completions.create({ model, prompt: 'Hi', ...extra }), OpenAI.BadRequestError, 400, param);
  }
  await expectError(() => client.chat.completions.create({ model, messages, response_format: { type: 'json_object' } }),
    OpenAI.BadRequestError, 400, 'response_format');
  await expectError(() => client.chat.completions.create({ model, messages: [] }), OpenAI.BadRequestError, 400, 'messages');
});

await check('errors: 404 unknown model, 400 malformed JSON', async () => {
  await expectError(() => client.completions.create({ model: 'gpt-nonexistent', prompt: 'Hi' }), OpenAI.NotFoundError, 404, 'model');
  await expectError(() => client.chat.completions.create({ model: 'gpt-nonexistent', messages }), OpenAI.NotFoundError, 404, 'model');
  await expectError(() => client.post('/completions', { body: '{"prompt": [1, 2', headers: { 'content-type': 'application/json' } }),
    OpenAI.BadRequestError, 400);
});

await check('sessions (extension fields through the SDK): continue, 404 unknown, 409 busy, delete', async () => {
  const turn1 = await client.chat.completions.create({ model, messages, ...greedy, keep_session: true });
  const session = turn1.session_id;
  assert(typeof session === 'string' && session.startsWith('sess-'), `session_id ${session}`);
  const turn2 = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'And two more?' }], ...greedy,
    session_id: session, keep_session: true });
  const cached = turn2.usage.prompt_tokens_details?.cached_tokens;
  assert(cached >= turn1.usage.prompt_tokens, `cached_tokens ${cached} covers turn 1's prompt (${turn1.usage.prompt_tokens})`);
  assert(turn2.usage.prompt_tokens > cached, JSON.stringify(turn2.usage));
  const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Go on.' }], temperature: 0,
    max_tokens: 100000, stream: true, session_id: session, keep_session: true });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  await expectError(() => client.completions.create({ model, prompt: 'x', max_tokens: 2, session_id: session }), OpenAI.ConflictError, 409, 'session_id');
  stream.controller.abort(); // a cancelled turn ends its session
  await expectError(() => client.completions.create({ model, prompt: 'x', max_tokens: 2, session_id: 'sess-none' }), OpenAI.NotFoundError, 404, 'session_id');
  const s2 = (await client.completions.create({ model, prompt: 'Hi', max_tokens: 2, keep_session: true })).session_id;
  const deleted = await client.delete(`/sessions/${s2}`);
  assert(deleted.deleted === true, JSON.stringify(deleted));
  await expectError(() => client.delete(`/sessions/${s2}`), OpenAI.NotFoundError, 404);
});

const failed = results.filter(([, e]) => e);
console.log(`openai-compat: ${results.length - failed.length}/${results.length} checks passed against ${baseURL}`);
// the plain closing line test harnesses read
console.log(`openai-compat: ${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length ? 1 : 0);
