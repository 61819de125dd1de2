// echo: a test fixture, not an example. It returns what the SDK decoded so
// tests can check the round trip through the ABI: the text comes back as a
// modify verdict, the rest in the reason, and one finding spans the whole
// text (checking the conversion of string indices to UTF-8 byte offsets).
//
// Texts starting with "!" drive edge cases:
//   "!reject"  rejects;  "!allow" allows;  "!abort" aborts (a trap);
//   "!grow N"  allocates N MiB and keeps it (memory limits);
//   "!loop"    never returns (timeouts);  "!log" logs and allows.

import { Request, Verdict, handleInput, handleOutput, log, LOG_INFO } from "../../assembly/index";
export * from "../../assembly/exports";

let kept: ArrayBuffer[] = [];

function describe(req: Request): string {
  const c = req.context;
  return (
    "phase=" + req.phase +
    ";route=" + c.route +
    ";model=" + c.model +
    ";client=" + c.client +
    ";user=" + c.user +
    ";request_id=" + c.requestId +
    ";kind=" + c.kind +
    ";role=" + c.role +
    ";path=" + c.path +
    ";config=" + req.configJSON +
    ";k=" + req.config.getString("k", "<none>") +
    ";n=" + req.config.getNumber("n", -1).toString() +
    ";b=" + (req.config.getBool("b", false) ? "true" : "false") +
    ";list=" + req.config.getStringArray("list").join(",")
  );
}

function echo(req: Request): Verdict {
  const t = req.text;
  if (t == "!reject") return Verdict.reject("echo: rejected on request");
  if (t == "!allow") return Verdict.allow();
  if (t == "!abort") abort("echo: abort on request");
  if (t == "!log") {
    log(LOG_INFO, "echo: hello from AssemblyScript");
    return Verdict.allow();
  }
  if (t == "!loop") {
    let i: i64 = 0;
    while (req.text.length > 0) i++;
    return Verdict.reject(i.toString());
  }
  if (t.startsWith("!grow ")) {
    const mib = I32.parseInt(t.substring(6));
    kept.push(new ArrayBuffer(mib << 20));
    return Verdict.allow();
  }
  return Verdict.modify(t, describe(req)).withFinding("all", 0, t.length);
}

handleInput(echo);
handleOutput(echo);
