// Validates a Teams app manifest offline with Microsoft's own validator (@microsoft/app-manifest).
//
//   node tests/e2e/validate_manifest.mjs <manifest.json>
//
// Prints one JSON object: {"ok": bool, "schema": "<the $schema it was checked against>", "errors": [...]}
// and exits 0 when valid, 1 when the manifest breaks the schema, 2 when it cannot be checked at all (no
// file, not JSON, or a $schema the package does not bundle). The library would quietly download an unknown
// schema; this script refuses instead, so a green result always means "checked here, offline".

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function finish(code, result) {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(code);
}

const file = process.argv[2];
if (!file) {
  finish(2, { ok: false, schema: null, errors: ['usage: node tests/e2e/validate_manifest.mjs <manifest.json>'] });
}

let manifest;
try {
  manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (error) {
  finish(2, { ok: false, schema: null, errors: [`cannot read ${file}: ${error.message}`] });
}

// The package needs fs-extra without declaring it (TRAPS.md): say so plainly if it is missing.
let AppManifestUtils;
try {
  ({ AppManifestUtils } = require('@microsoft/app-manifest'));
} catch (error) {
  finish(2, { ok: false, schema: null, errors: [`cannot load @microsoft/app-manifest (npm ci?): ${error.message}`] });
}

const schemaUrl = manifest.$schema;
const suffix = schemaUrl ? AppManifestUtils.getLocalSchemaSuffix(schemaUrl) : undefined;
const bundled = suffix ? path.join(path.dirname(require.resolve('@microsoft/app-manifest')), suffix) : null;
if (!bundled || !fs.existsSync(bundled)) {
  finish(2, {
    ok: false,
    schema: schemaUrl ?? null,
    errors: [`$schema ${JSON.stringify(schemaUrl)} is not bundled with @microsoft/app-manifest; refusing to fetch it`],
  });
}

const schema = await AppManifestUtils.fetchSchema(schemaUrl); // reads the bundled file found above
const errors = await AppManifestUtils.validateAgainstSchema(manifest, schema);
finish(errors.length ? 1 : 0, { ok: errors.length === 0, schema: schemaUrl, errors });
