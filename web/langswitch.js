// The visible ru/en switch: two buttons; the choice is remembered (i18n.setLang) and the page is
// reloaded in it. Used on the pre-join screen, the message and end screens.

import { h } from "./dom.js";
import { t, lang, LANGS, setLang } from "./i18n.js";

export function langSwitch() {
  const box = h("div", { class: "lang-switch", id: "lang-switch", role: "group", "aria-label": t("language") });
  for (const code of LANGS) {
    box.appendChild(h("button", { type: "button", class: `lang${code === lang ? " selected" : ""}`, id: `lang-${code}`,
      lang: code, "aria-pressed": String(code === lang), text: t(`lang_${code}`),
      onclick: () => { if (code !== lang) setLang(code); } }));
  }
  return box;
}
