// phrases: a test fixture for Phrases. It rejects a text containing any of
// the config's "p" phrases, naming the phrase's index in the finding's rule.

import { Request, Verdict, Phrases, JSONValue, handleInput } from "../../assembly/index";
export * from "../../assembly/exports";

let builtFor: JSONValue | null = null;
let phrases = new Phrases([]);

handleInput((req: Request): Verdict => {
  if (builtFor !== req.config) {
    phrases = new Phrases(req.config.getStringArray("p"));
    builtFor = req.config;
  }
  const at = phrases.find(req.text);
  if (at < 0) return Verdict.allow();
  const n = req.config.getStringArray("p")[phrases.which].length;
  return Verdict.reject("phrase").withFinding("p" + phrases.which.toString(), at, at + n);
});
