"""Steps several recipes share: transfer learning, language-model pairs."""
