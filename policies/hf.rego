# Decisions for the Hugging Face Hub.
#
# Input (facts computed by the proxy; see README "Hugging Face Hub"):
#   input.action     "file" (a /resolve download) | "metadata" (repo info, tree, paths-info)
#   input.project    canonical repo id, e.g. "acme/tiny-model"
#   input.files[]    the file of a download: {filename, kind ("lfs"|"regular"), size, hashes}
#   input.facts      endpoint ("resolve"|"info"|"revision"|"tree"|"paths-info"), repo_type,
#                    repo, repo_key ("org/name", "datasets/org/name", ...), org,
#                    requested_repo, requested_key, revision (as asked; null for bare info),
#                    pinned (revision is a full 40-hex commit), commit (what is served),
#                    upstream_commit (where the revision points upstream now),
#                    approved_commit, path, size, lfs, private, gated,
#                    identity {object_id, author, created_at, canonical},
#                    identity_recorded, identity_findings [{kind, message}], stale
# Data (admin-edited): data.airlock.config.hf  (policies/data/hf.json)
package airlock.hf

import rego.v1

default allow := false

decision := {"allow": allow, "deny": deny, "file_deny": file_deny}

allow if count(deny) == 0

cfg := object.get(data.airlock.config, "hf", {})

facts := object.get(input, "facts", {})

repo := object.get(facts, "repo", input.project)

repo_type := object.get(facts, "repo_type", "model")

repo_key := object.get(facts, "repo_key", repo)

requested_key := object.get(facts, "requested_key", repo_key)

org := object.get(facts, "org", null)

revision := object.get(facts, "revision", null)

commit := object.get(facts, "commit", null)

endpoint := object.get(facts, "endpoint", "resolve")

pinned := object.get(facts, "pinned", false)

at_revision := concat("", [" at revision '", revision, "'"]) if is_string(revision) else := ""

# ---- which repos: deny list first, then the allow list ---------------------------------------

# An entry names an org, a repo (id or "datasets/org/name" key) and/or a type; every field it
# gives must match.  An entry without any of them matches nothing.
selects(entry) if {
	count({k | some k in ["org", "repo", "type"]; entry[k]}) > 0
	field_ok(entry, "org", org)
	repo_ok(entry)
	field_ok(entry, "type", repo_type)
}

field_ok(entry, name, _) if not entry[name]

field_ok(entry, name, value) if {
	is_string(value)
	lower(entry[name]) == lower(value)
}

repo_ok(entry) if not entry.repo

repo_ok(entry) if lower(entry.repo) == lower(repo)

repo_ok(entry) if lower(entry.repo) == lower(repo_key)

# Revisions of an allow entry name branches, tags or commits; bare repo info has none.
revision_ok(entry) if not entry.revisions

revision_ok(_) if revision == null

revision_ok(entry) if revision in entry.revisions

revision_ok(entry) if {
	is_string(commit)
	commit in entry.revisions
}

deny contains {"rule": "deny-list", "message": msg} if {
	some entry in object.get(cfg, "deny", [])
	selects(entry)
	msg := concat("", [repo_key, " is on the deny list: ", object.get(entry, "reason", "no reason given")])
}

allow_listed if {
	some entry in object.get(cfg, "allow", [])
	selects(entry)
	revision_ok(entry)
}

deny contains {"rule": "not-allow-listed", "message": msg} if {
	object.get(cfg, "allow_all", false) != true
	not allow_listed
	msg := concat("", [
		repo_key, at_revision,
		" is not on the allow list (by org, repo, type and revision);",
		" ask an admin to add it to policies/data/hf.json",
	])
}

# ---- unpinned pulls: a revision that is not a full commit -------------------------------------

unpinned_mode := object.get(cfg, "unpinned", "deny")

# The branch or tag whose target the answer would show.  Bare repo info has no revision and
# answers with the default branch's commit: it is a look-up of 'main' like any other.  Every
# endpoint counts (a download, repo info, tree, paths-info): each one tells the client what a
# branch points to, and a client that learns it pins that commit itself (transformers does).
shown_revision := revision if {
	is_string(revision)
} else := "main" if {
	endpoint == "info"
}

unpinned if {
	is_string(shown_revision)
	pinned != true
}

no_revision_note := " (repo info without a revision is branch 'main')" if {
	revision == null
} else := ""

upstream_commit := c if {
	c := object.get(facts, "upstream_commit", null)
	is_string(c)
}

pin_hint := concat("", [": revision=\"", upstream_commit, "\" is what '", shown_revision, "' points to now"]) if {
	upstream_commit
} else := " (a full 40-character commit id)"

deny contains {"rule": "unpinned", "message": msg} if {
	unpinned
	unpinned_mode == "deny"
	msg := concat("", [
		"revision '", shown_revision, "' of ", repo_key,
		" is a branch or tag, not a commit; pin a commit", pin_hint, no_revision_note,
	])
}

approvals := object.get(cfg, "approved", {})

approved_for := c if {
	c := approvals[repo_key]
	is_string(c)
} else := c if {
	entry := approvals[repo_key]
	is_object(entry)
	c := object.get(entry, shown_revision, object.get(entry, "*", null))
	is_string(c)
}

now_at := concat("", [" ('", shown_revision, "' points to ", upstream_commit, " now)"]) if {
	upstream_commit
} else := ""

deny contains {"rule": "unpinned-unapproved", "message": msg} if {
	unpinned
	unpinned_mode == "resolve-approved"
	not approved_for
	msg := concat("", [
		"no commit of ", repo_key, " is approved for revision '", shown_revision, "'", now_at,
		"; an admin must approve one in policies/data/hf.json, or pin a full commit id",
	])
}

deny contains {"rule": "unpinned-unapproved", "message": msg} if {
	unpinned
	unpinned_mode == "resolve-approved"
	approved_for
	commit != approved_for
	msg := concat("", ["revision '", shown_revision, "' of ", repo_key, " must resolve to the approved commit ", approved_for])
}

deny contains {"rule": "policy-config", "message": msg} if {
	unpinned
	not unpinned_mode in ["deny", "resolve-approved", "allow"]
	msg := "hf.json: 'unpinned' must be \"deny\", \"resolve-approved\" or \"allow\""
}

# ---- namespace reuse: the repo behind the name is not the one first approved -----------------

identity := object.get(facts, "identity", {})

current_id := i if {
	i := object.get(identity, "object_id", null)
	is_string(i)
} else := "<unknown>"

identity_accepted if {
	accepted := object.get(cfg, "accept_identity", {})[requested_key]
	accepted == current_id
}

deny contains {"rule": "namespace-reuse", "message": msg} if {
	found := object.get(facts, "identity_findings", [])
	count(found) > 0
	object.get(cfg, "namespace_reuse", "deny") != "allow"
	not identity_accepted
	what := concat("; ", [f.message | some f in found])
	msg := concat("", [
		"possible namespace reuse: ", what,
		". If the new owner is trusted, an admin can accept it with accept_identity[\"",
		requested_key, "\"] = \"", current_id, "\" in policies/data/hf.json",
	])
}

# ---- files -----------------------------------------------------------------------------------

file_deny contains {"filename": f.filename, "rule": "file-too-large", "message": msg} if {
	limit := object.get(cfg, "max_file_size", null)
	is_number(limit)
	some f in input.files
	is_number(f.size)
	f.size > limit
	msg := sprintf("%s is %d bytes, over the %d-byte limit of this mirror", [f.filename, f.size, limit])
}

# ---- model scanning (facts: input.facts.scan, present once the file's content is stored) ------
#   {scanned, digest, format, scanner_version, findings: [{rule, message, location}], summary,
#    approval ("approve" | "deny" | null), approval_reason}
# data: "scan": {"enforce": true, "allow_orgs": [], "allow_repos": [], "allow_rules": []}

scan_cfg := object.union(
	{"enforce": true, "allow_orgs": [], "allow_repos": [], "allow_rules": []},
	object.get(cfg, "scan", {}),
)

scan := object.get(facts, "scan", {})

scan_exempt if org in scan_cfg.allow_orgs

scan_exempt if repo in scan_cfg.allow_repos

# Findings whose rule the admins chose to accept (e.g. "torchscript-code") do not count.
scan_findings := [f | some f in object.get(scan, "findings", []); not f.rule in scan_cfg.allow_rules]

file_deny contains {"filename": f.filename, "rule": "model-scan", "message": msg} if {
	scan_cfg.enforce
	count(scan_findings) > 0
	object.get(scan, "approval", null) != "approve"
	not scan_exempt
	some f in input.files
	msg := concat("", [
		f.filename, " is quarantined by the model scanner: ", scan.summary,
		". An admin can approve sha256 ", scan.digest, " (airlock quarantine approve)",
	])
}

file_deny contains {"filename": f.filename, "rule": "model-scan", "message": msg} if {
	object.get(scan, "approval", null) == "deny"
	some f in input.files
	msg := concat("", [f.filename, " (sha256 ", scan.digest, ") was denied by an admin: ", scan.approval_reason])
}
