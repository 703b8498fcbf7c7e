// Recording: the indicator everyone sees, the host's start/stop and the room's recordings list.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).

export function createRecording(ctx) { // eslint-disable-line no-unused-vars
  return {};
}
