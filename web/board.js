// The whiteboard (Yjs) inside the lesson.
// Installed by features.js with the lesson's context; strings through addStrings (i18n.js).

export function createBoard(ctx) {
  return {};
}
