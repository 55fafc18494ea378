// The version reported by the server, the agent and the CLI.
export const GANTRY_VERSION = '0.1.0';
