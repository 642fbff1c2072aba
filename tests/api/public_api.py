#!/usr/bin/env python3
"""Lists the public API of the labthings crate from rustdoc's JSON output, one item a line.

Usage: public_api.py target/doc/labthings.json > tests/api/public-api.txt

The list is what a user can name: every item reachable from the crate root through public
modules and re-exports (items rustdoc hides with `#[doc(hidden)]` are not in its output, so
`__private` is left out), with each function's signature, each struct's public fields, each
enum's variants, each trait's items and the inherent methods of every type. Trait
implementations are left out (auto traits and blanket impls would drown the list).

It also prints, on standard error, every type from another crate that a public signature
names, other than the standard library and the crates the API re-exports on purpose
(ALLOWED below); the run fails when there is one. `tests/api/run.sh` runs it in CI and diffs
the list against the snapshot in the repository, so that every change to the API shows in
review.
"""

import json
import sys

# Crates whose types are part of our API on purpose. Each is re-exported or documented as such:
# axum (the router and its `http` types: `ThingServer::router`, `stream::routes`), bytes (frames
# are `Bytes`), serde_json (`Value` for dynamic properties), chrono (timestamps), schemars (the
# `JsonSchema` derive, re-exported at the root), and the clap error of `CommandLine`.
ALLOWED = {
    "std", "core", "alloc",
    "labthings", "labthings_macros",
    "axum", "axum_core", "http", "bytes", "serde_json", "serde", "serde_core", "chrono",
    "schemars",
    # The runtime: `serve` takes tokio's listener, as `axum::serve` does; a property's
    # `subscribe` gives tokio's `watch::Receiver`.
    "tokio",
    # `CommandLine::try_parse_from` answers clap's error, which prints usage.
    "clap_builder",
    # Streams of frames and changes are `futures_core::Stream`s.
    "futures_core",
    # The client's HTTP client, re-exported as `labthings::client::reqwest` (its `Url` too,
    # as `labthings::client::reqwest::Url`).
    "reqwest", "url",
}


def main():
    doc = json.load(open(sys.argv[1]))
    index = doc["index"]
    paths = doc["paths"]
    crates = {int(k): v["name"] for k, v in doc.get("external_crates", {}).items()}
    crates[0] = "labthings"
    lines = set()
    foreign = set()

    def crate_of(item_id):
        entry = paths.get(str(item_id))
        if entry is None:
            return None
        return crates.get(entry["crate_id"], "?")

    def path_of(item_id):
        entry = paths.get(str(item_id))
        if entry is None:
            return None
        return "::".join(entry["path"])

    def ty(t):
        if t is None:
            return "()"
        if "resolved_path" in t:
            rp = t["resolved_path"]
            crate = crate_of(rp["id"])
            if crate is not None and crate not in ALLOWED:
                foreign.add(path_of(rp["id"]))
            name = rp.get("path") or rp.get("name")
            return name + generic_args(rp.get("args"))
        if "primitive" in t:
            return t["primitive"]
        if "generic" in t:
            return t["generic"]
        if "borrowed_ref" in t:
            b = t["borrowed_ref"]
            life = (b["lifetime"] + " ") if b.get("lifetime") else ""
            mut = "mut " if b.get("is_mutable") else ""
            return "&" + life + mut + ty(b["type"])
        if "raw_pointer" in t:
            r = t["raw_pointer"]
            return ("*mut " if r.get("is_mutable") else "*const ") + ty(r["type"])
        if "tuple" in t:
            return "(" + ", ".join(ty(x) for x in t["tuple"]) + ")"
        if "slice" in t:
            return "[" + ty(t["slice"]) + "]"
        if "array" in t:
            return "[" + ty(t["array"]["type"]) + "; " + str(t["array"]["len"]) + "]"
        if "impl_trait" in t:
            return "impl " + " + ".join(bound(b) for b in t["impl_trait"])
        if "dyn_trait" in t:
            return "dyn " + " + ".join(
                poly(p) for p in t["dyn_trait"]["traits"]
            )
        if "qualified_path" in t:
            q = t["qualified_path"]
            return "<" + ty(q["self_type"]) + ">::" + q["name"]
        if "function_pointer" in t:
            return "fn(..)"
        return "?"

    def poly(p):
        trait = p["trait"]
        crate = crate_of(trait["id"])
        if crate is not None and crate not in ALLOWED:
            foreign.add(path_of(trait["id"]))
        return (trait.get("path") or trait.get("name")) + generic_args(trait.get("args"))

    def bound(b):
        if "trait_bound" in b:
            return poly(b["trait_bound"])
        if "outlives" in b:
            return b["outlives"]
        return "?"

    def generic_args(args):
        if not args:
            return ""
        if "angle_bracketed" in args:
            parts = []
            for a in args["angle_bracketed"].get("args", []):
                if "type" in a:
                    parts.append(ty(a["type"]))
                elif "lifetime" in a:
                    parts.append(a["lifetime"])
                elif "const" in a:
                    parts.append("_")
            for c in args["angle_bracketed"].get("constraints", []):
                binding = c.get("binding", {})
                if "equality" in binding and "type" in binding["equality"]:
                    parts.append(c["name"] + " = " + ty(binding["equality"]["type"]))
                else:
                    parts.append(c["name"])
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in args:
            p = args["parenthesized"]
            out = "(" + ", ".join(ty(x) for x in p.get("inputs", [])) + ")"
            if p.get("output"):
                out += " -> " + ty(p["output"])
            return out
        return ""

    def signature(f):
        sig = f["sig"]
        inputs = ", ".join(
            (name if name == "self" else name + ": " + ty(t)) for name, t in sig["inputs"]
        )
        out = sig.get("output")
        header = f.get("header", {})
        prefix = "async " if header.get("is_async") else ""
        # Bounds are read for the foreign-type check, not printed.
        for g in f.get("generics", {}).get("params", []):
            kind = g.get("kind", {})
            if "type" in kind:
                for b in kind["type"].get("bounds", []):
                    bound(b)
        for w in f.get("generics", {}).get("where_predicates", []):
            if "bound_predicate" in w:
                for b in w["bound_predicate"].get("bounds", []):
                    bound(b)
        text = prefix + "fn(" + inputs + ")" + ((" -> " + ty(out)) if out else "")
        return text

    def public(item):
        return item.get("visibility") == "public"

    def walk(item_id, prefix, seen):
        item = index.get(str(item_id))
        if item is None:
            return
        inner = item["inner"]
        kind = next(iter(inner)) if isinstance(inner, dict) else inner
        name = item.get("name")
        path = prefix + "::" + name if name else prefix
        if kind == "module":
            if item_id in seen:
                return
            seen = seen | {item_id}
            lines.add(f"pub mod {path}")
            for child in inner["module"]["items"]:
                child_item = index.get(str(child))
                if child_item is None or not public(child_item):
                    continue
                walk(child, path, seen)
        elif kind == "use":
            use = inner["use"]
            target = use.get("id")
            if use.get("is_glob"):
                if target is not None and str(target) in index:
                    for child in index[str(target)]["inner"]["module"]["items"]:
                        walk(child, prefix, seen)
                return
            alias = use["name"]
            if target is not None and str(target) in index:
                target_item = dict(index[str(target)])
                target_item["name"] = alias
                index_key = f"alias:{target}:{alias}"
                index[index_key] = target_item
                walk(index_key, prefix, seen)
            else:
                lines.add(f"pub use {prefix}::{alias} = {use['source']}")
        elif kind == "function":
            lines.add(f"pub fn {path}: {signature(inner['function'])}")
        elif kind == "struct":
            lines.add(f"pub struct {path}")
            s = inner["struct"]
            fields = s.get("kind", {})
            if isinstance(fields, dict) and "plain" in fields:
                for f in fields["plain"]["fields"]:
                    field = index.get(str(f))
                    if field and public(field):
                        lines.add(f"pub struct field {path}::{field['name']}: {ty(field['inner']['struct_field'])}")
            elif isinstance(fields, dict) and "tuple" in fields:
                for n, f in enumerate(fields["tuple"]):
                    field = index.get(str(f)) if f is not None else None
                    if field and public(field):
                        lines.add(f"pub struct field {path}::{n}: {ty(field['inner']['struct_field'])}")
            impls(s.get("impls", []), path)
        elif kind == "enum":
            lines.add(f"pub enum {path}")
            e = inner["enum"]
            for v in e["variants"]:
                variant = index.get(str(v))
                if variant:
                    lines.add(f"pub enum variant {path}::{variant['name']}")
            impls(e.get("impls", []), path)
        elif kind == "trait":
            lines.add(f"pub trait {path}")
            for t in inner["trait"]["items"]:
                member = index.get(str(t))
                if member is None:
                    continue
                mk = next(iter(member["inner"]))
                if mk == "function":
                    lines.add(f"pub trait fn {path}::{member['name']}: {signature(member['inner']['function'])}")
                else:
                    lines.add(f"pub trait {mk} {path}::{member['name']}")
        elif kind == "type_alias":
            lines.add(f"pub type {path} = {ty(inner['type_alias']['type'])}")
        elif kind == "constant":
            lines.add(f"pub const {path}: {ty(inner['constant']['type'])}")
        elif kind == "static":
            lines.add(f"pub static {path}: {ty(inner['static']['type'])}")
        elif kind in ("proc_macro", "macro"):
            lines.add(f"pub macro {path}")
        else:
            lines.add(f"pub {kind} {path}")

    def impls(impl_ids, path):
        for i in impl_ids:
            imp = index.get(str(i))
            if imp is None:
                continue
            body = imp["inner"]["impl"]
            if body.get("trait") is not None or body.get("is_synthetic") or body.get("blanket_impl"):
                continue
            for m in body["items"]:
                member = index.get(str(m))
                if member is None or not public(member):
                    continue
                mk = next(iter(member["inner"]))
                if mk == "function":
                    lines.add(f"pub fn {path}::{member['name']}: {signature(member['inner']['function'])}")
                elif mk == "constant":
                    lines.add(f"pub const {path}::{member['name']}: {ty(member['inner']['constant']['type'])}")

    walk(doc["root"], "labthings", frozenset())
    # The root module's own line carries the crate name twice.
    out = sorted(line.replace("labthings::labthings", "labthings") for line in lines)
    print("\n".join(out))
    if foreign:
        for name in sorted(foreign):
            print(f"a public signature names a type of another crate: {name}", file=sys.stderr)
        sys.exit(1)


main()
