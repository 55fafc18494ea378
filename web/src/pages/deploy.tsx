// Deploy a new app (or change one) from a YAML spec typed or pasted here.
import { SpecEditor } from '../spec/spec-editor';
import { navigate, seg, useTitle } from '../lib/router';

const EXAMPLE = `app: hello
entrypoints:
  web:
    command: ["sh", "-c", "while true; do echo hello; sleep 5; done"]
    replicas: 1
    resources: { cpu: 0.1, memory: 32Mi }
`;

export function DeployPage() {
  useTitle('Deploy');
  return (
    <>
      <h1>Deploy</h1>
      <p className="muted">
        A <code>gantry.yaml</code> app spec (the reference is docs/app-spec.md). It is checked as you type; Apply sends it to the server.
      </p>
      <SpecEditor initial={EXAMPLE} onApplied={(result) => navigate(`/apps/${seg(result.app.name)}`)} />
    </>
  );
}
