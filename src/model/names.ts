// The names Gantry accepts from outside, in one place: every path parameter, agent message and
// registry entry is checked against these before it is used as a store key, a map key, a
// file name or a value written into a config file. A name that passes never needs escaping.
import { isIP } from 'node:net';
import { z } from 'zod';

/** Apps, envs, entrypoints, ports, pools, volumes: a DNS label in lower case. */
export const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const NAME_RULE = 'lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters';

/** `{app}-{entry}-{8 hex}`, as the replica controller names instances. */
export const INSTANCE_ID = /^[a-z0-9][a-z0-9-]{0,159}$/;

/** A host name (the default node name) or any name an operator gives with --node-name. */
export const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,252})$/;
export const NODE_NAME_RULE = 'letters, digits, ".", "_" and "-", starting with a letter or digit, at most 253 characters';

export const TOKEN_NAME = /^[a-z0-9]([a-z0-9._-]{0,62})$/;
export const TOKEN_NAME_RULE = 'lowercase letters, digits, ".", "_" or "-", starting with a letter or digit, at most 63 characters';

/** Keys of instance, endpoint and node labels. */
export const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
/** Values of labels that reach config files and DNS: no quotes, braces, semicolons or control characters. */
export const LABEL_VALUE = /^[A-Za-z0-9 ._:/@=+-]{0,256}$/;

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/;

/** True for an IPv4 or IPv6 literal or a host name: the only addresses written into nginx files and DNS answers. */
export function isHostAddress(value: string): boolean {
  return isIP(value) !== 0 || HOST_NAME.test(value);
}

export const name = (what = 'name') => z.string().regex(NAME, `${what}: ${NAME_RULE}`);
export const nodeName = () => z.string().regex(NODE_NAME, `node name: ${NODE_NAME_RULE}`);
export const instanceId = () => z.string().regex(INSTANCE_ID, 'instance id: lower-case letters, digits and "-"');
export const hostAddress = () => z.string().refine(isHostAddress, 'expected an IPv4 or IPv6 address or a host name');
export const labelMap = (max = 64) =>
  z
    .record(z.string().regex(LABEL_KEY, 'label keys are letters, digits, ".", "_", "/", "-"'), z.string().regex(LABEL_VALUE, 'label values are letters, digits and " ._:/@=+-"'))
    .refine((labels) => Object.keys(labels).length <= max, `at most ${max} labels`);
export const port = () => z.number().int().min(1).max(65535);
