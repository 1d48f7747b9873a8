// A stand-in CLI, used ONLY where the real one cannot misbehave on demand: a non-JSON line on stdout, a crash
// mid-stream, and events of another major schema version. FAKE_CLI_MODE picks which.
const event = (seq, fields) =>
  JSON.stringify({ seq, ts: "2030-01-01T00:00:00.000Z", run_id: "fake", schema_version: "1.0", ...fields });
const started = { type: "run.started", task_id: "exec", manifest: "m.json", mode: "exec" };
const mode = process.env.FAKE_CLI_MODE;
if (mode === "not-json") {
  console.log(event(1, started));
  console.log("Traceback (most recent call last): this is not an event");
  console.error("codex-orchestrator exec: printed garbage");
} else if (mode === "crash") {
  console.log(event(1, started));
  console.error("codex-orchestrator exec: internal error: the fake CLI crashed");
  process.kill(process.pid, "SIGKILL");
} else if (mode === "future") {
  console.log(JSON.stringify({ ...JSON.parse(event(1, started)), schema_version: "2.0" }));
} else {
  console.error(`fake-cli: unknown FAKE_CLI_MODE ${mode}`);
  process.exit(2);
}
