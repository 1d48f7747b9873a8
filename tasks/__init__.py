"""Prefect tasks: thin wrappers that translate between Prefect and the core (codex_orchestrator).

approval.py   the approval pause (RunInput form, pause/resume, answering from code or the CLI)
context.py    the live runs of this process, by run id, and hooks the CLI attaches to them
tool_call.py  one tool call through the ToolOrchestrator gate, as a Prefect task
artifacts.py  the manifest, tool-call and metrics views published as Prefect artifacts
agent_artifacts.py  each agent step's transcript and its agent's tool calls, as artifacts
foundation.py the instruction hierarchy, its hashes and drift (and drift's approval)
notify.py     notification blocks and Prefect events; the approval-waiting automation
log_hygiene.py  no empty "NoneType: None" traceback under a failed task; one pause notice on the terminal
"""

from tasks import log_hygiene
from tasks import notify as notify  # installs block / Prefect-event delivery for notifications

log_hygiene.install()
