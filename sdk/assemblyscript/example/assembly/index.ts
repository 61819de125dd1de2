// deny-words: an input sanitizer built with moat's AssemblyScript SDK.
//
// Config ([plugins.config] in config.toml):
//   deny      = ["ignore previous instructions", ...]  # any match rejects
//   mask      = ["password", ...]                      # matches are masked
//   mask_with = "[masked]"                             # the replacement
//   case_sensitive = false                             # Unicode case folding
//
// A denied word rejects the text. Masked words are replaced until none is
// left, so overlapping tricks such as "passpasswordword" do not survive one
// pass. A replacement that would itself re-create a masked word is refused
// (fail closed).

import { Request, Verdict, JSONValue, handleInput } from "../../assembly/index";
export * from "../../assembly/exports";

const MAX_ROUNDS = 32;

class Rules {
  deny: string[] = [];
  denyFolded: string[] = [];
  mask: string[] = [];
  maskFolded: string[] = [];
  maskWith: string = "[masked]";
  caseSensitive: bool = false;
}

let rulesFor: JSONValue | null = null;
let rules: Rules = new Rules();

/**
 * Folds s to lower case for matching. Indices must stay in place (findings
 * point into the original text), so when full Unicode lower-casing changes
 * the length (as for "İ"), only ASCII letters are folded.
 */
function fold(s: string, caseSensitive: bool): string {
  if (caseSensitive) return s;
  // ASCII text (the common case) folds byte for byte, and for it that is
  // exactly Unicode lower-casing: skip the general case mapping.
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    const units = new Uint16Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      units[i] = <u16>(c >= 0x41 && c <= 0x5a ? c + 32 : c);
    }
    return String.UTF16.decode(units.buffer);
  }
  const lower = s.toLowerCase();
  if (lower.length == s.length) return lower;
  const units = new Uint16Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    units[i] = <u16>(c >= 0x41 && c <= 0x5a ? c + 32 : c);
  }
  return String.UTF16.decode(units.buffer);
}

function loadRules(cfg: JSONValue): Rules {
  const r = new Rules();
  r.caseSensitive = cfg.getBool("case_sensitive", false);
  r.maskWith = cfg.getString("mask_with", "[masked]");
  const deny = cfg.getStringArray("deny");
  for (let i = 0; i < deny.length; i++) {
    if (deny[i].length == 0) continue;
    r.deny.push(deny[i]);
    r.denyFolded.push(fold(deny[i], r.caseSensitive));
  }
  const mask = cfg.getStringArray("mask");
  for (let i = 0; i < mask.length; i++) {
    if (mask[i].length == 0) continue;
    r.mask.push(mask[i]);
    r.maskFolded.push(fold(mask[i], r.caseSensitive));
  }
  return r;
}

function judge(req: Request): Verdict {
  // The SDK hands back the same config object while the config is
  // unchanged, so the folded word lists are built once.
  if (rulesFor !== req.config) {
    rules = loadRules(req.config);
    rulesFor = req.config;
  }
  const text = req.text;
  const folded = fold(text, rules.caseSensitive);

  for (let i = 0; i < rules.denyFolded.length; i++) {
    const at = folded.indexOf(rules.denyFolded[i]);
    if (at >= 0) {
      return Verdict.reject("denied word: " + rules.deny[i]).withFinding(
        "deny:" + rules.deny[i],
        at,
        at + rules.deny[i].length,
      );
    }
  }
  if (rules.mask.length == 0) return Verdict.allow();

  // Findings locate the masked words in the original text.
  const v = Verdict.modify("", "masked words");
  for (let i = 0; i < rules.maskFolded.length; i++) {
    const w = rules.maskFolded[i];
    let at = folded.indexOf(w);
    while (at >= 0) {
      v.withFinding("mask:" + rules.mask[i], at, at + w.length);
      at = folded.indexOf(w, at + w.length);
    }
  }
  if (v.findings.length == 0) return Verdict.allow();

  let cur = text;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const cf = fold(cur, rules.caseSensitive);
    let hit = false;
    let out = "";
    let pos = 0;
    // Replace the earliest match of any word, left to right.
    while (true) {
      let best = -1;
      let bestLen = 0;
      for (let i = 0; i < rules.maskFolded.length; i++) {
        const at = cf.indexOf(rules.maskFolded[i], pos);
        if (at >= 0 && (best < 0 || at < best)) {
          best = at;
          bestLen = rules.maskFolded[i].length;
        }
      }
      if (best < 0) break;
      hit = true;
      out += cur.substring(pos, best) + rules.maskWith;
      pos = best + bestLen;
    }
    if (!hit) {
      v.text = cur;
      return v;
    }
    cur = out + cur.substring(pos);
  }
  return Verdict.reject("masking did not converge: mask_with re-creates a masked word");
}

handleInput(judge);
