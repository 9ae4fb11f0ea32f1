// Berth console: dialogs, copy-to-clipboard and confirmations. No framework.
document.addEventListener('click', async (e) => {
  const opener = e.target.closest('[data-open]');
  if (opener) {
    const dialog = document.getElementById(opener.dataset.open);
    if (dialog) {
      for (const [k, v] of Object.entries(opener.dataset)) {
        if (k.startsWith('fill')) {
          const field = dialog.querySelector(`[name="${k.slice(4).toLowerCase()}"]`);
          if (field) field.value = v;
          const text = dialog.querySelector(`[data-text="${k.slice(4).toLowerCase()}"]`);
          if (text) text.textContent = v;
        }
      }
      dialog.showModal();
    }
    return;
  }
  if (e.target.closest('[data-close]')) {
    e.target.closest('dialog')?.close();
    return;
  }
  const copy = e.target.closest('[data-copy]');
  if (copy) {
    const text = copy.dataset.copy;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (_) {
      const area = document.createElement('textarea');
      area.value = text;
      area.style.position = 'fixed';
      area.style.opacity = '0';
      document.body.appendChild(area);
      area.select();
      ok = document.execCommand('copy');
      area.remove();
    }
    copy.dataset.copied = ok ? 'yes' : 'no';
    copy.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { copy.textContent = 'Copy'; }, 2000);
  }
});
document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('dialog[data-autoopen]').forEach((d) => d.showModal());
});
