// Noise suppression: one's own switch and the host's switch for the room.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).

export function createNoise(ctx) {
  return {};
}
