// Captions: the overlay under the speaker, the transcript panel and the host's switch.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).

export function createCaptions(ctx) {
  return {};
}
