// Generates src/events.ts and src/manifest.ts from ../../schemas/*.schema.json (json-schema-to-typescript).
// `--check` writes nothing and exits 1 when a committed file differs from what the schemas give: `make test` runs
// it, so a schema change that is not regenerated here fails CI.
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, "..");
const schemas = join(pkg, "..", "..", "schemas");
const check = process.argv.includes("--check");

const BANNER = (source) =>
  `// GENERATED from schemas/${source} by scripts/generate-types.mjs (npm run generate). Do not edit.\n`;

/** The schema's MAJOR.MINOR, read from the default of `schema_version`, which every event model carries (the
 * parts nested in events, such as `AgentTokenCounts`, are not events and carry none). */
function eventsSchemaVersion(schema) {
  const events = Object.values(schema.$defs).filter((def) => def.properties?.type !== undefined);
  const versions = new Set(events.map((def) => def.properties?.schema_version?.default));
  if (versions.size !== 1 || typeof [...versions][0] !== "string") {
    throw new Error(`events.schema.json: expected one schema_version default on every event, got ${[...versions]}`);
  }
  return [...versions][0];
}

/** Pydantic titles every field ("Seq", "Error"); the generator would make each a named alias (Seq1, Seq2, ... and
 * an `Error` that shadows the global one). Only the models' own titles name types. */
function dropFieldTitles(node) {
  if (Array.isArray(node)) return node.forEach(dropFieldTitles);
  if (node === null || typeof node !== "object") return;
  for (const property of Object.values(node.properties ?? {})) delete property.title;
  for (const value of Object.values(node)) dropFieldTitles(value);
}

async function render(source, rootName, extra) {
  const schema = JSON.parse(await readFile(join(schemas, source), "utf8"));
  delete schema.$id; // a remote $id would make the generator try to resolve refs against it
  dropFieldTitles(schema);
  schema.title = rootName;
  const types = await compile(schema, rootName, {
    bannerComment: "",
    additionalProperties: false,
    unreachableDefinitions: false,
    style: { printWidth: 110 },
  });
  return BANNER(source) + "\n" + (extra ? extra(schema) + "\n" : "") + types;
}

const outputs = [
  [
    "src/events.ts",
    await render("events.schema.json", "Event", (schema) =>
      [
        "/** MAJOR.MINOR of the event schema these types were generated from; see docs/events.md. */",
        `export const EVENTS_SCHEMA_VERSION = ${JSON.stringify(eventsSchemaVersion(schema))};`,
      ].join("\n"),
    ),
  ],
  ["src/manifest.ts", await render("manifest.schema.json", "Manifest")],
];

let stale = 0;
for (const [file, text] of outputs) {
  const path = join(pkg, file);
  if (check) {
    const current = await readFile(path, "utf8").catch(() => null);
    if (current !== text) {
      stale += 1;
      console.error(`stale: sdk/node/${file} does not match schemas/ (run \`npm run generate\` in sdk/node)`);
    }
  } else {
    await writeFile(path, text);
    console.log(`wrote ${relative(process.cwd(), path) || path}`);
  }
}
process.exit(stale ? 1 : 0);
