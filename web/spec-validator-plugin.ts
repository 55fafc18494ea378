// The console's CSP forbids eval, which Ajv's runtime compiler needs: the app spec's JSON Schema
// is compiled to a standalone ES module at build time instead (import 'virtual:spec-validator').
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import standaloneCode from 'ajv/dist/standalone/index.js';
import type { Plugin } from 'vite';

const ID = 'virtual:spec-validator';
const SCHEMA = fileURLToPath(new URL('../docs/gantry.schema.json', import.meta.url));

export function specValidator(): Plugin {
  return {
    name: 'gantry-spec-validator',
    resolveId: (id) => (id === ID ? `\0${ID}` : undefined),
    load(id) {
      if (id !== `\0${ID}`) return undefined;
      this.addWatchFile(SCHEMA);
      const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false, code: { source: true, esm: true } });
      const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA, 'utf8')));
      return standaloneCode(ajv, validate);
    },
  };
}
