import { useState } from 'preact/hooks';
import { loginAppCredential, loginPassword } from '../api.ts';
import { ErrorNote, Field, Tabs, errorText, val } from '../ui.tsx';

export function Login() {
  const [mode, setMode] = useState('password');
  const [domain, setDomain] = useState('Default');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [acId, setAcId] = useState('');
  const [acSecret, setAcSecret] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'password') await loginPassword(domain.trim(), user.trim(), password);
      else await loginAppCredential(acId.trim(), acSecret);
      document.title = 'Stratus';
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <h1>Stratus</h1>
      <form onSubmit={submit} aria-label="Log in">
        <Tabs tabs={[['password', 'Password'], ['appcred', 'Application credential']]} current={mode} onSelect={setMode} />
        {mode === 'password' ? (
          <>
            <Field label="Domain"><input name="domain" value={domain} onInput={(e) => setDomain(val(e))} autocomplete="off" /></Field>
            <Field label="User name"><input name="username" value={user} onInput={(e) => setUser(val(e))} autocomplete="username" required /></Field>
            <Field label="Password"><input name="password" type="password" value={password} onInput={(e) => setPassword(val(e))} autocomplete="current-password" required /></Field>
          </>
        ) : (
          <>
            <Field label="Application credential ID"><input name="ac-id" value={acId} onInput={(e) => setAcId(val(e))} autocomplete="off" required /></Field>
            <Field label="Secret"><input name="ac-secret" type="password" value={acSecret} onInput={(e) => setAcSecret(val(e))} autocomplete="off" required /></Field>
          </>
        )}
        <ErrorNote error={error} />
        <button type="submit" class="primary" disabled={busy}>{busy ? 'Logging in…' : 'Log in'}</button>
      </form>
    </main>
  );
}
