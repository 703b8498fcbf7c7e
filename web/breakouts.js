// Breakout rooms: the host's panel and the student's group view.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).

export function createBreakouts(ctx) {
  return {};
}
