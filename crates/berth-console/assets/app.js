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
// Selections for batch deletes: row checkboxes belong to a form by their
// `form` attribute; a header box selects them all; the "Delete selected"
// button (data-batch) is enabled while any is checked, and its dialog
// shows how many.
function selected(form) {
  return document.querySelectorAll(`input[type=checkbox][form="${form}"]:checked`).length;
}
function refreshBatch(form) {
  const n = selected(form);
  document.querySelectorAll(`[data-batch="${form}"]`).forEach((b) => { b.disabled = n === 0; });
  document.querySelectorAll(`[data-count="${form}"]`).forEach((c) => { c.textContent = String(n); });
  const all = document.querySelectorAll(`input[type=checkbox][form="${form}"]`).length;
  document.querySelectorAll(`[data-select-all="${form}"]`).forEach((h) => {
    h.checked = all > 0 && n === all;
    h.indeterminate = n > 0 && n < all;
  });
}
document.addEventListener('change', (e) => {
  // Filters that apply as soon as they change (a namespace, a sort order).
  const auto = e.target.closest('select[data-autosubmit]');
  if (auto) {
    auto.form?.submit();
    return;
  }
  const head = e.target.closest('[data-select-all]');
  if (head) {
    const form = head.dataset.selectAll;
    document.querySelectorAll(`input[type=checkbox][form="${form}"]`).forEach((b) => { b.checked = head.checked; });
    refreshBatch(form);
    return;
  }
  const box = e.target.closest('input[type=checkbox][form]');
  if (box) refreshBatch(box.getAttribute('form'));
});
document.addEventListener('DOMContentLoaded', () => {
  document.querySelectorAll('[data-batch]').forEach((b) => refreshBatch(b.dataset.batch));
  document.querySelectorAll('dialog[data-autoopen]').forEach((d) => d.showModal());
});
