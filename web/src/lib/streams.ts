// Live data: the server's Server-Sent Events streams (EventSource sends the session cookie by
// itself and resumes with Last-Event-ID after a drop) and followed text streams (logs).
import { useEffect, useRef } from 'react';

/** Opens `url` while mounted (and while it is not undefined); each named SSE event goes to its handler as parsed JSON. */
export function useEventSource(url: string | undefined, handlers: Record<string, (data: any) => void>, onState?: (open: boolean) => void): void {
  const latest = useRef(handlers);
  latest.current = handlers;
  const stateRef = useRef(onState);
  stateRef.current = onState;
  const names = Object.keys(handlers).sort().join(',');
  useEffect(() => {
    if (!url) return;
    const source = new EventSource(url, { withCredentials: true });
    for (const name of names.split(',')) {
      source.addEventListener(name, (message) => latest.current[name]?.(JSON.parse((message as MessageEvent<string>).data)));
    }
    source.onopen = () => stateRef.current?.(true);
    source.onerror = () => stateRef.current?.(false);
    return () => source.close();
  }, [url, names]);
}

/** Reads a followed text stream (e.g. logs) line by line until `signal` aborts or it ends. */
export async function followLines(url: string, signal: AbortSignal, onLines: (lines: string[]) => void): Promise<void> {
  const response = await fetch(url, { credentials: 'same-origin', signal });
  if (!response.ok || !response.body) {
    const text = await response.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      /* plain text */
    }
    throw new Error(message || `${response.status}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const parts = (rest + value).split('\n');
    rest = parts.pop() ?? '';
    if (parts.length > 0) onLines(parts);
  }
  if (rest) onLines([rest]);
}
