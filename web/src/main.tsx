import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app/app';
import { SessionProvider } from './lib/session';
import { applyTheme, initialTheme } from './lib/theme';
import './styles.css';

applyTheme(initialTheme(), false);
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SessionProvider>
      <App />
    </SessionProvider>
  </StrictMode>,
);
