// Edgeway token authorizer in JavaScript (world `edgeway:plugin/authorizer@0.1.0`), with
// the same behaviour as the Rust `plugins/token-authorizer`:
//
//   { "tokens": {
//       "s3cr3t": { "principal": "alice", "context": { "tier": "gold" }, "usage_key": "k-alice" },
//       "other":  { "principal": "bob" } } }
//
// It reads the first identity value and accepts `Bearer <token>` (scheme in any case) or a
// bare token. No identity, an empty or malformed value (`Bearer` alone, another scheme,
// spaces inside the token) -> unauthorized; a token not in the config ->
// deny("token not recognised"); a known token -> allow with the entry's principal, its
// context sorted by key (as the Rust plugin's BTreeMap gives it) followed by
// ("lang", "js"), and its usage_key.
//
// The config is read and checked once per instance, on the first call (top-level code runs
// at build time, when no host is there). Unknown keys are rejected. A bad config is logged
// once at error level and every call then fails with the same `err(...)`.

import { get as configText } from 'edgeway:plugin/config@0.1.0';
import { log } from 'edgeway:plugin/log@0.1.0';

const LANG = ['lang', 'js'];
const UNAUTHORIZED = Object.freeze({ tag: 'unauthorized' });
const DENY = Object.freeze({ tag: 'deny', val: 'token not recognised' });

// Rust's `str::trim` (Unicode White_Space) and `char::is_ascii_whitespace`.
const TRIM = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
const TRIM_START = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const ASCII_SPACE = /[\t\n\f\r ]/;

class ConfigError extends Error {
  constructor(path, message) {
    super(`plugin config: at \`${path}\`: ${message}`);
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function onlyKeys(obj, allowed, path) {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      const expected = allowed.map((a) => `\`${a}\``).join(', ');
      throw new ConfigError(path, `unknown field \`${k}\`, expected one of ${expected}`);
    }
  }
}

// token -> the `allow` decision it earns, built once.
function parseConfig(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('.', `not valid JSON: ${e.message}`);
  }
  if (raw === null) {
    throw new Error(
      'plugin config: none was given and this plugin needs one (missing field `tokens`)',
    );
  }
  if (!isObject(raw)) throw new ConfigError('.', `invalid type: ${kind(raw)}, expected an object`);
  onlyKeys(raw, ['tokens'], '.');
  if (!('tokens' in raw)) throw new ConfigError('.', 'missing field `tokens`');
  if (!isObject(raw.tokens)) {
    throw new ConfigError('tokens', `invalid type: ${kind(raw.tokens)}, expected a map`);
  }
  const allows = new Map();
  for (const [token, entry] of Object.entries(raw.tokens)) {
    const at = `tokens.${token}`;
    if (!isObject(entry)) throw new ConfigError(at, `invalid type: ${kind(entry)}, expected an object`);
    onlyKeys(entry, ['principal', 'context', 'usage_key'], at);
    if (!('principal' in entry)) throw new ConfigError(at, 'missing field `principal`');
    if (typeof entry.principal !== 'string') {
      throw new ConfigError(`${at}.principal`, `invalid type: ${kind(entry.principal)}, expected a string`);
    }
    const context = [];
    if ('context' in entry) {
      if (!isObject(entry.context)) {
        throw new ConfigError(`${at}.context`, `invalid type: ${kind(entry.context)}, expected a map`);
      }
      for (const [k, v] of Object.entries(entry.context)) {
        if (typeof v !== 'string') {
          throw new ConfigError(`${at}.context.${k}`, `invalid type: ${kind(v)}, expected a string`);
        }
        context.push([k, v]);
      }
      context.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    }
    context.push(LANG);
    const usageKey = entry.usage_key ?? undefined;
    if (usageKey !== undefined && typeof usageKey !== 'string') {
      throw new ConfigError(`${at}.usage_key`, `invalid type: ${kind(usageKey)}, expected a string`);
    }
    allows.set(token, { tag: 'allow', val: { principalId: entry.principal, context, usageKey } });
  }
  return allows;
}

// null until the first call; then { allows } or { error }.
let state = null;

function setup() {
  try {
    return { allows: parseConfig(configText()) };
  } catch (e) {
    const error = `plugin setup failed: ${e.message}`;
    log('error', `js-authorizer: ${error}`);
    return { error };
  }
}

// The token in an identity value, or null when the value is empty or malformed.
function tokenOf(raw) {
  const value = raw.replace(TRIM, '');
  const m = ASCII_SPACE.exec(value);
  if (m === null) {
    return value === '' || value.toLowerCase() === 'bearer' ? null : value;
  }
  const scheme = value.slice(0, m.index);
  const token = value.slice(m.index + 1).replace(TRIM_START, '');
  const wellFormed = scheme.toLowerCase() === 'bearer' && token !== '' && !ASCII_SPACE.test(token);
  return wellFormed ? token : null;
}

export function authorize(identity, _request) {
  if (state === null) state = setup();
  // A thrown string becomes `err(string)` of the export's result.
  if (state.error !== undefined) throw state.error;
  const token = identity.length > 0 ? tokenOf(identity[0][1]) : null;
  if (token === null) return UNAUTHORIZED;
  return state.allows.get(token) ?? DENY;
}
