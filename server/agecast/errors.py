"""Typed errors. Each message names the thing that failed and what to do about it."""


class AgecastError(Exception):
    """Base of every error agecast raises on purpose."""


class SettingsError(AgecastError):
    """A setting (flag, env var or TOML key) is unknown or invalid."""


class SourceError(AgecastError):
    """A source URI cannot be opened or read."""


class SourceLost(SourceError):
    """A live source stopped delivering frames (it may come back)."""


class BackendUnavailable(AgecastError):
    """An inference backend cannot run on this machine (library or device missing)."""


class BackendError(AgecastError):
    """A model could not be loaded or run by a backend."""


class IdentityError(AgecastError):
    """An identity package is missing, malformed or does not match its model."""


class DetectorError(AgecastError):
    """The face detector's model file is missing or not the expected one."""


class RecogniserError(AgecastError):
    """The face recogniser's model file is missing or not the expected one."""


class CastError(AgecastError):
    """A cast file or member is missing or invalid, or a reference photo shows no usable face."""


class QualityError(AgecastError):
    """A picture-quality measurement cannot be made (e.g. no face in the clip)."""


class FacesetError(AgecastError):
    """A faceset folder is missing, malformed or empty, or an extraction cannot go on."""


class TakeError(AgecastError):
    """A take name is invalid, a take is unknown or exists, or a recording cannot go on."""


class TrainError(AgecastError):
    """A training run cannot start, continue or be exported: bad facesets, a run in the way."""


class UnknownCamera(AgecastError):
    """A request names a camera this server does not run."""


class OutputError(AgecastError):
    """An output file or folder cannot be written (checked before the work that fills it)."""


class ServeError(AgecastError):
    """The monitor cannot start serving: its port is taken or its address is not this host's."""
