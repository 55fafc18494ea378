// A shell in a running instance: xterm.js over the exec WebSocket (/v1/instances/:id/exec).
// Keystrokes go as {"type":"input"}, the size as {"type":"resize"}; the server sends output,
// exit and error messages. The session cookie authenticates it (the browser sends Origin).
import { useEffect, useRef, useState } from 'react';
import { Terminal as XTerm } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { seg } from '../lib/router';

type ServerMessage = { type: 'output'; data: string } | { type: 'exit'; code: number } | { type: 'error'; message: string };

export function Terminal({ instance, onClose }: { instance: string; onClose?: () => void }) {
  const host = useRef<HTMLDivElement>(null);
  const [state, setState] = useState('connecting');
  useEffect(() => {
    const term = new XTerm({ cursorBlink: true, fontSize: 13, convertEol: false, theme: document.documentElement.dataset.theme === 'light' ? { background: '#ffffff', foreground: '#1d2330', cursor: '#1d2330' } : undefined });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current!);
    fit.fit();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/v1/instances/${seg(instance)}/exec?cols=${term.cols}&rows=${term.rows}`);
    const send = (message: object) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(message));
    socket.onopen = () => {
      setState('open');
      term.focus();
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as ServerMessage;
      if (message.type === 'output') term.write(message.data);
      else if (message.type === 'exit') {
        term.write(`\r\n[exited with code ${message.code}]\r\n`);
        setState(`exited (${message.code})`);
      } else if (message.type === 'error') {
        term.write(`\r\n[error: ${message.message}]\r\n`);
        setState('error');
      }
    };
    socket.onclose = () => setState((s) => (s === 'open' || s === 'connecting' ? 'closed' : s));
    const input = term.onData((data) => send({ type: 'input', data }));
    const resize = term.onResize(({ cols, rows }) => send({ type: 'resize', cols, rows }));
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(host.current!);
    return () => {
      observer.disconnect();
      input.dispose();
      resize.dispose();
      socket.close();
      term.dispose();
    };
  }, [instance]);
  return (
    <div className="terminal">
      <div className="toolbar">
        <span>
          Shell in <b>{instance}</b>: <span data-testid="terminal-state">{state}</span>
        </span>
        {onClose && (
          <button type="button" className="small" onClick={onClose}>
            Close
          </button>
        )}
      </div>
      <div className="terminal-host" ref={host} role="application" aria-label={`Terminal of ${instance}`} />
    </div>
  );
}
