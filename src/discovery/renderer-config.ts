// Reads an upstream renderer's configuration file (YAML), for `gantry server --renderer FILE`:
//
//   name: nginx
//   template: nginx-upstreams.hbs        # relative to this file
//   output: /etc/nginx/conf.d/gantry.conf
//   check: [nginx, -t, -q]
//   reload: [nginx, -s, reload]
//   vars: { listen: "80", domain: apps.example.com }
//   debounce: 50ms
//
// `output: /etc/nginx/conf.d/gantry-{app}-{env}.conf` renders one file per app/env instead
// (renderer-files.ts). Every problem names the file and the field; the template is compiled
// and tried at once.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { DURATION_PATTERN, parseDuration } from '../model/units.js';
import { SpecError, problemsFromZod } from '../model/spec.js';
import { validateTemplate, type RendererConfig } from './renderer.js';
import { outputPattern } from './renderer-files.js';

const duration = z.union([z.number().nonnegative(), z.string().regex(DURATION_PATTERN, 'expected a duration such as "50ms"')]).transform((v) => parseDuration(v)!);
const argv = z.array(z.string().min(1)).min(1);

const RendererFile = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]+$/, 'lower-case letters, digits and "-"'),
  template: z.string().min(1),
  output: z.string().min(1),
  check: argv.optional(),
  reload: argv.optional(),
  vars: z.record(z.string(), z.unknown()).default({}),
  debounce: duration.default(50),
  timeout: duration.default(10_000),
});

export function loadRendererConfig(file: string): RendererConfig {
  let decoded: unknown;
  try {
    decoded = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SpecError([{ path: '', message: (err as Error).message.split('\n')[0]! }], file);
  }
  const parsed = RendererFile.safeParse(decoded);
  if (!parsed.success) throw new SpecError(problemsFromZod(parsed.error), file);
  const { template, output, debounce, timeout, ...rest } = parsed.data;
  try {
    outputPattern(output);
  } catch (err) {
    throw new SpecError([{ path: 'output', message: (err as Error).message }], file);
  }
  const templatePath = resolve(dirname(file), template);
  let source: string;
  try {
    source = readFileSync(templatePath, 'utf8');
  } catch (err) {
    throw new SpecError([{ path: 'template', message: `cannot read ${templatePath}: ${(err as Error).message}` }], file);
  }
  validateTemplate(rest.name, source, rest.vars);
  return { ...rest, template: source, output: resolve(dirname(file), output), debounceMs: debounce, timeoutMs: timeout };
}
