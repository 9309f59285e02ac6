"""The settings dialog's tabs, one class each. A tab shows part of `Settings` (`load`) and reads it
back (`values`: the fields it owns); the dialog composes them and hands the runtime the result."""
